"""Reusable network layers (k-winners-take-all, ...)."""
