"""The customer's side of each flow, driven through the agent's local API."""
