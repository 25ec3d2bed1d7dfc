"""Utilities: checkpoint conversion, MAC counting."""
