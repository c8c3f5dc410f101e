"""The version of labbook, in a module of its own so that anything may read it cheaply."""

__all__ = ["__version__"]

__version__ = "0.1.0"
