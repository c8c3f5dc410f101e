"""The version of labbook, in a module of its own so that anything may read it cheaply."""

__all__ = ["__version__", "__author__", "__author_email__", "__url__"]

__version__ = "0.1.0"

# Sacred's package metadata names; labbook has no public home page or contact address yet
__author__ = "The labbook developers"
__author_email__ = ""
__url__ = ""
