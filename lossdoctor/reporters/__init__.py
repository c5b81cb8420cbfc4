"""Reporters: one module per output format, each rendering ``Report.to_dict()``."""
