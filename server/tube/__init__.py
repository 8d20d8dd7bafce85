"""Tube transactions, the server side: the record, the terminal's messages, the back office."""
