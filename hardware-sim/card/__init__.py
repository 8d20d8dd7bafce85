"""Sample cards for the simulated card reader: magnetic tracks and an EMV contact chip model."""
