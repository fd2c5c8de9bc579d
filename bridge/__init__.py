"""The mail ⇄ SMS bridge."""

__version__ = "0.1.0"
