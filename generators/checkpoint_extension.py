"""The extension whose generator a checkpoint holds: recorded when it is written, named
when it is read where that extension is not installed.

A checkpoint of a generator that an extension registers (``model.kind``, see
docs/architecture.md) needs that extension to be read: its config class and its network
are the extension's. Where it is missing, the generator's name alone is unknown, and the
refusal would read as a checkpoint of another wxens; the record names the distribution and
version to install instead.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from generators.models import GENERATORS
from pipeline.errors import StoreError
from pipeline.extensions import failed_note

GENERATOR_EXTENSION = "generator_extension"
"""The checkpoint's entry recording the extension of its generator (None: wxens')."""


def extension_record(kind: str) -> dict[str, str] | None:
    """The entry point, module, distribution and version of the extension that registered
    the generator ``kind``, as plain values a checkpoint holds; None for wxens' own."""
    extension = GENERATORS.extension(kind)
    if extension is None:
        return None
    return {
        "entry_point": extension.name,
        "target": extension.target,
        "distribution": extension.distribution,
        "version": extension.version,
    }


def check_generator_known(payload: Mapping[str, Any], path: Path) -> None:
    """Refuse the checkpoint ``path`` whose generator this environment does not have,
    naming the extension it records and how to install it."""
    kind = payload["kind"]
    if kind in GENERATORS:
        return
    here = f"this environment ({sys.executable}; generators: {', '.join(GENERATORS.names())}"
    here += f"{failed_note()})"
    record = payload.get(GENERATOR_EXTENSION)
    if record is None:
        raise StoreError(
            f"{path} was trained with the generator {kind!r}, which neither wxens nor an "
            f"extension registers in {here}: install the extension that registers it "
            "(`wxens info` lists the installed ones), or load it where that one is installed"
        )
    r = record
    raise StoreError(
        f"{path} was trained with the generator {kind!r} of the extension "
        f"{r['entry_point']!r} ({r['distribution']} {r['version']}, {r['target']}), which "
        f"{here} does not have: install it there (pip install {r['distribution']}=="
        f"{r['version']}), or load the checkpoint where it is installed"
    )
