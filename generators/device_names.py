"""The names of the devices wxens runs on, checked without torch (a config's ``device``,
refused where it is given: ``wxens config --set device=tpu`` printed and wrote a whole
config that only ``wxens train`` then refused). Whether this machine has the device named
is :func:`generators.device.resolve_device`'s check, at training: a config written on a
CPU machine for a GPU one names ``cuda``."""

from __future__ import annotations

import re

from pipeline.errors import InputError

DEVICES = "auto, cpu, cuda or cuda:N"
"""The device names wxens runs on, for messages."""

_NAME = re.compile(r"auto|(cpu|cuda|mps)(:\d+)?")


def check_device_name(name: str, option: str = "device:") -> None:
    """Refuse a ``name`` that names no device wxens runs on (``tpu``), as ``option`` (how
    the user gave it), with the names to use; ``cuda:3`` passes on any machine."""
    if not _NAME.fullmatch(name):
        raise InputError(f"{option} {name!r} is not a device name; use {DEVICES}")
