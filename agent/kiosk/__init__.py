"""The kiosk page the agent serves to the customer's screen: flow in Python, page as a view."""
