"""Prometheus metrics of the server: the ``metrics`` capability (``--metrics-listen``)."""
