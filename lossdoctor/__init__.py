"""lossdoctor: diagnose machine-learning training runs from their loss logs."""

__version__ = "0.1.0"
