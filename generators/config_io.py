"""Frozen dataclasses from and to plain mappings, and mappings from YAML or TOML files.

:func:`from_mapping` (:mod:`pipeline.config_fields`, re-exported) builds a (nested) frozen
dataclass from a mapping, checking every key and coercing every value to its field's type:
an unknown key, or a value of the wrong type, is an :class:`~pipeline.errors.InputError`
naming its dotted path (``optim.lr``). :func:`to_mapping` is its inverse (plain dicts,
lists and scalars, YAML/JSON-safe).
:func:`apply_overrides` applies ``--set key.sub=value`` overrides, read as YAML, to a mapping.
:func:`is_toml` says whether a config file is TOML, :func:`toml_text` writes a value as TOML.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from pipeline.config_fields import from_mapping
from pipeline.errors import InputError, refuse_dangling_link
from pipeline.spec import split_pair

__all__ = [
    "apply_overrides",
    "from_mapping",
    "is_toml",
    "read_mapping",
    "to_mapping",
    "toml_text",
]


def to_mapping(obj: Any) -> Any:
    """Inverse of :func:`from_mapping`: plain dicts, lists and scalars (YAML/JSON-safe)."""
    if hasattr(obj, "to_mapping"):
        return obj.to_mapping()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_mapping(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, tuple | list):
        return [to_mapping(v) for v in obj]
    if isinstance(obj, Mapping):
        return {k: to_mapping(v) for k, v in obj.items()}
    return obj


class _Loader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader, but a date YAML cannot build (``2019-13-01``) is kept as
    its text, for the config's own checks to name with its key (YAML's ValueError, "month
    must be in 1..12", named neither and ended in a traceback)."""


def _timestamp(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError:
        return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)


def read_mapping(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML (.yaml/.yml) or TOML (.toml) file."""
    path = Path(path)
    refuse_dangling_link(path, InputError)
    if path.is_dir():
        raise InputError(f"config file {path} is a directory, not a YAML or TOML file")
    if not path.is_file():
        raise InputError(f"config file {path} does not exist")
    text = path.read_text()
    try:
        data = tomllib.loads(text) if is_toml(path) else yaml.load(text, Loader=_Loader)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as err:
        raise InputError(
            f"config file {path} is not valid {path.suffix[1:].upper()}: {err}"
        ) from None
    if not isinstance(data, dict):
        raise InputError(f"config file {path} must hold a mapping at top level")
    return data


def is_toml(path: str | Path) -> bool:
    """Whether the config file ``path`` is read as TOML (``.toml``); YAML otherwise."""
    return Path(path).suffix == ".toml"


def toml_text(value: Any) -> str:
    """A config value (not None: TOML has no null) as TOML writes it: ``"2019-03-15"``,
    ``[8, 16]``, ``true``, ``{start = "2019-03-01", end = "2019-03-15"}`` (a table's keys of
    value None left out, as they read None)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else "inf" if value > 0 else "-inf"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # its escapes are TOML's basic string's
    if isinstance(value, Mapping):
        kept = ((k, v) for k, v in value.items() if v is not None)
        return "{" + ", ".join(f"{k} = {toml_text(v)}" for k, v in kept) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_text(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def apply_overrides(
    data: Mapping[str, Any], overrides: list[str] | tuple[str, ...]
) -> dict[str, Any]:
    """``["optim.lr=1e-4", "data.leads=[1, 6]"]`` applied to a nested mapping (copied);
    values are parsed as YAML, so ``1e-4`` is a number and ``[1, 6]`` a list."""
    out = _deep_copy(data)
    for item in overrides:
        key, text = split_pair(item, what="override", form="key.subkey=value")
        node = out
        parts = key.split(".")
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if child is None:  # a section left out (``fine_tune: null``): given whole
                whole = text
                for inner in reversed(parts[depth + 1 :]):
                    whole = f"{{{inner}: {whole}}}"
                raise InputError(
                    f"override {item!r}: {'.'.join(parts[: depth + 1])!r} is null (left out), "
                    f"so it has no keys to set one of; give it whole (its other keys default): "
                    f"'{'.'.join(parts[: depth + 1])}={whole}' in overrides= (--set)"
                )
            if not isinstance(child, dict):
                raise InputError(f"override {item!r}: {part!r} is a value, not a section")
            node = child
        node[parts[-1]] = _yaml_value(item, text)
    return out


def _yaml_value(item: str, text: str) -> Any:
    """The value of one override, read as a YAML scalar, list or mapping; an
    :class:`InputError` naming the override, where YAML stopped and the fix otherwise."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise InputError(
            f"override {item!r}: the value {text!r} is not valid YAML ({problem}{where}); "
            "quote text that holds YAML syntax ('key=\"a: b\"') and close every [ or {"
        ) from err


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}
