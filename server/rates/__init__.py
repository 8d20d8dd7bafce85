"""The FX rate feed: every connected terminal holds the current rate table."""
