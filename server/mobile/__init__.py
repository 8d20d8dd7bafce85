"""Customers' phones: pairing a phone with a terminal through the QR on its attract screen
(RFC 10027: short-lived, single-use handles bound to the terminal, a matching code on both
screens, cancel from either side) and the service list the phone sees."""
