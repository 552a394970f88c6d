"""msashop: a working microservice e-commerce platform."""

__version__ = "0.1.0"
