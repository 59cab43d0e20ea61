"""shopkeeper: a shop assistant for messaging apps (dialog engine and everything around one turn)."""

__version__ = "0.1.0"
