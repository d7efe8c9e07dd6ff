"""lifelong: continual learning in PyTorch with one loop, one data model and one command line."""

__version__ = "0.1.0"
