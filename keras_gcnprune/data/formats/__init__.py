"""Readers of the real skeleton dataset formats, one module per format."""
