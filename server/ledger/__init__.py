"""The embedded core banking: customers, accounts, cards and their PIN verification data."""
