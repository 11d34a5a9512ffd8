"""Exceptions with messages meant for a person: what was wrong, where, and the fix.

The CLI prints a :class:`WxensError` without a traceback and exits with its
``exit_code``; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class WxensError(Exception):
    """Base class of every error wxens raises on purpose."""

    exit_code = 2


class InputError(WxensError, ValueError):
    """An input file, variable or value cannot be used as given."""


class StoreError(WxensError):
    """A Zarr store is missing, incomplete or does not match what was asked."""
