"""What the ``generators`` loggers of a dask worker's process say, heard there: a warning the
client says for the user (whose terminal does not show the workers' logs) must not be said
again in each worker. Run :func:`listen` and :func:`heard` in the workers with
``Client.run`` (this module is imported there by name: the workers need this checkout on
their path)."""

from __future__ import annotations

import logging


class _Heard(logging.Handler):
    """What the ``generators`` loggers of a dask worker's process say, kept there."""

    messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def listen() -> None:
    """In a dask worker: keep what its ``generators`` loggers say from now, INFO up
    (:func:`heard`); once a process however often called (a cluster shared by tests)."""
    logger = logging.getLogger("generators")
    logger.setLevel("INFO")
    _Heard.messages.clear()
    if not any(isinstance(handler, _Heard) for handler in logger.handlers):
        logger.addHandler(_Heard())


def heard() -> list[str]:
    """In a dask worker: what its ``generators`` loggers said since :func:`listen`."""
    return list(_Heard.messages)
