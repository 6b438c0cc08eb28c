"""Fixtures of the reliability suite come from tests/conftest.py; this file keeps the package explicit."""
