"""The electronic teller: knowledge base, offline matcher, hand-over rules and learning."""
