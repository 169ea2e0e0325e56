"""cockpit: a full-screen terminal release cockpit for on-call engineers."""

__version__ = "0.1.0"
