"""Fixtures of the function tests: the recording sink (tests/support/functions.py)."""

from tests.support.functions import sink

__all__ = ["sink"]
