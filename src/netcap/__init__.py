"""netcap: network traffic to typed audit records and Prometheus metrics."""

__all__ = ["__version__"]

__version__ = "0.1.0"
