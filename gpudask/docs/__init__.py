"""Docs: documentation generated from the code (`python -m gpudask docs`)."""
