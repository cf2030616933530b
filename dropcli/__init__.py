"""dropcli: regularization experiments on the command line."""
__version__ = "0.1.0"
