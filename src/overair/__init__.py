"""overair: a self-hosted over-the-air update platform for mobile app bundles."""

__version__ = "0.1.0"
