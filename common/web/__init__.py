"""What the processes with a page on loopback share (the kiosk's, the console's)."""
