"""The simulated cheque printer: an IPP printer with a feeder, a cassette of pre-printed stock
and a book presenter."""
