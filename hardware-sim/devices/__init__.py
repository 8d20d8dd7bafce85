"""Simulated devices, each speaking its real wire protocol on a PtyLine."""
