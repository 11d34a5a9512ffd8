"""How long ``wxens compact`` keeps what a store's readers may still use
(:func:`pipeline.transaction.compact`'s grace): apart from that module, which loads
Icechunk, so that the command's ``--help`` says the grace without loading it."""

from __future__ import annotations

from datetime import timedelta

GC_GRACE = timedelta(minutes=10)
"""How young an unreferenced object, and the commits last within it, compact keeps."""


def grace_text(grace: timedelta) -> str:
    """``10 minutes``, ``1 minute``, ``90 seconds``: ``grace`` in the words of a message."""
    for unit, size in (("minute", timedelta(minutes=1)), ("second", timedelta(seconds=1))):
        if grace % size == timedelta(0):
            n = grace // size
            return f"{n} {unit}{'' if n == 1 else 's'}"
    return f"{grace.total_seconds():g} seconds"
