"""The extensions whose generator and backbone a checkpoint holds: recorded when it is
written, named when it is read where one of them is not installed.

A checkpoint of a generator (``model.kind``) or a backbone (``model.backbone.kind``) that an
extension registers (see docs/architecture.md) needs that extension to be read: its config
class and its network are the extension's. Where it is missing, the name alone is
unknown, and the refusal would read as a checkpoint of another wxens; the record names the
distribution and version to install instead.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from generators.base import BACKBONES, DEFAULT_BACKBONE, backbone_kind
from generators.models import GENERATORS
from pipeline.errors import StoreError
from pipeline.extensions import failed_note
from pipeline.registry import Registry

GENERATOR_EXTENSION = "generator_extension"
"""The checkpoint's entry recording the extension of its generator (None: wxens')."""
BACKBONE_EXTENSION = "backbone_extension"
"""The checkpoint's entry recording the extension of its backbone (None: wxens'; absent
from checkpoints written before backbones were registered, all of the U-Net)."""


def extension_records(kind: str, model_config: Any) -> dict[str, dict[str, str] | None]:
    """The checkpoint's entries recording the extensions of the generator ``kind`` and of
    the backbone of ``model_config``."""
    return _records(kind, backbone_kind(model_config.backbone))


def recorded_extensions(payload: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """The entries of the checkpoint ``path``'s ``payload`` recording the extensions of its
    generator and backbone; where one is absent (written before it was recorded), the
    extension registering the part here. Refused where this environment lacks a part
    (:func:`check_parts_known`)."""
    check_parts_known(payload, path)
    here = _records(payload["kind"], _backbone(payload))
    return {entry: payload.get(entry, record) for entry, record in here.items()}


def parts_text(kind: str, backbone: str, records: Mapping[str, Any]) -> str:
    """``conv_flow (extension 'convflow', wxens-convflow 0.1), backbone unet``: the generator
    ``kind`` and the ``backbone`` of a checkpoint, each with the extension its ``records``
    (:func:`recorded_extensions`) name, which a user must install to use it."""

    def part(name: str, record: Mapping[str, str] | None) -> str:
        if record is None:  # wxens' own
            return name
        r = record
        return f"{name} (extension {r['entry_point']!r}, {r['distribution']} {r['version']})"

    generator = part(kind, records.get(GENERATOR_EXTENSION))
    return f"{generator}, backbone {part(backbone, records.get(BACKBONE_EXTENSION))}"


def _records(kind: str, backbone: str) -> dict[str, dict[str, str] | None]:
    return {
        GENERATOR_EXTENSION: _record(GENERATORS, kind),
        BACKBONE_EXTENSION: _record(BACKBONES, backbone),
    }


def _backbone(payload: Mapping[str, Any]) -> str:
    """The backbone of a checkpoint's ``payload`` (absent: written before backbones were
    registered, all of the U-Net)."""
    return payload["model_config"].get("backbone", {}).get("kind", DEFAULT_BACKBONE)


def _record(registry: Registry, name: str) -> dict[str, str] | None:
    """The entry point, module, distribution and version of the extension that registered
    ``name`` in ``registry``, as plain values a checkpoint holds; None for wxens' own."""
    extension = registry.extension(name)
    if extension is None:
        return None
    return {
        "entry_point": extension.name,
        "target": extension.target,
        "distribution": extension.distribution,
        "version": extension.version,
    }


def check_parts_known(payload: Mapping[str, Any], path: Path) -> None:
    """Refuse the checkpoint ``path`` whose generator or backbone this environment does not
    have, naming the extension it records and how to install it."""
    parts = (
        (GENERATORS, payload["kind"], GENERATOR_EXTENSION),
        (BACKBONES, _backbone(payload), BACKBONE_EXTENSION),
    )
    for registry, name, entry in parts:
        if name not in registry:
            _refuse(registry, name, payload.get(entry), path)


def _refuse(registry: Registry, name: str, record: Mapping[str, str] | None, path: Path) -> None:
    what = registry.kind
    here = f"this environment ({sys.executable}; {what}s: {', '.join(registry.names())}"
    here += f"{failed_note()})"
    if record is None:
        raise StoreError(
            f"{path} was trained with the {what} {name!r}, which neither wxens nor an "
            f"extension registers in {here}: install the extension that registers it "
            "(`wxens info` lists the installed ones), or load it where that one is installed"
        )
    r = record
    raise StoreError(
        f"{path} was trained with the {what} {name!r} of the extension "
        f"{r['entry_point']!r} ({r['distribution']} {r['version']}, {r['target']}), which "
        f"{here} does not have: install it there (pip install {r['distribution']}=="
        f"{r['version']}), or load the checkpoint where it is installed"
    )
