"""Persistence: the Store interface (base.py) and its backends."""
