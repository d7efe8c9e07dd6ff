"""Continual-learning methods, one file each, registered by name."""
