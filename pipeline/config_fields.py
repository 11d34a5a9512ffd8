"""Frozen config dataclasses built from plain mappings, and their fields as their types.

:func:`from_mapping` builds a (nested) frozen dataclass from a mapping read from YAML or
TOML, checking every key and coercing every value to its field's type: an unknown key, or
a value of the wrong type, is an :class:`~pipeline.errors.InputError` naming its dotted
path (``optim.lr``). :func:`settle_fields`, called by each config's ``__post_init__``,
applies the same coercion to a config built in Python, naming ``Class.field``: a list
where a tuple is declared held as such was unhashable and compared unequal to the config
its checkpoint loads, a numpy scalar made the checkpoint unloadable and a string for a
number failed as a TypeError deep inside a check. Both coerce the same way; numpy scalars
and arrays, which a file never gives, are taken as the Python values they hold.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

import numpy as np

from pipeline.errors import TIME_TYPES, InputError, time_text
from pipeline.spec import field_types


def from_mapping(cls: type, data: Mapping[str, Any], where: str = "config") -> Any:
    """Build the frozen dataclass ``cls`` from a nested mapping, checking keys and types.

    A dataclass with a ``from_mapping`` classmethod (e.g. ``ModelSpec``) builds itself.
    """
    if not isinstance(data, Mapping):
        raise InputError(f"{where} must be a mapping of keys to values, got {data!r}")
    custom = cls.__dict__.get("from_mapping")
    if custom is not None:
        return cls.from_mapping(data, where)
    names = field_types(cls)
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise InputError(f"unknown key(s) {unknown} in {where}; known keys: {sorted(names)}")
    kwargs = {key: coerce_value(names[key], value, f"{where}.{key}") for key, value in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise InputError(f"{where}: {err}") from None


def settle_fields(config: Any) -> None:
    """Set each init field of the frozen dataclass ``config`` to its value as the field's
    type (a list as a tuple, ``np.int64(3)`` as 3, a mapping as the nested config), or
    refuse a value of another kind naming the class, the field, the value and the fix."""
    cls = type(config)
    for name, tp in field_types(cls).items():
        value = getattr(config, name)
        try:
            settled = coerce_value(tp, value, f"{cls.__name__}.{name}")
        except InputError as err:
            raise InputError(
                f"{err}: give {cls.__name__}({name}=...) a value of its type, {_type_text(tp)}"
            ) from None
        object.__setattr__(config, name, settled)


def _type_text(tp: Any) -> str:
    """``int``, ``tuple[int, ...] | int``: a field's type as its class declares it."""
    return tp.__name__ if isinstance(tp, type) else str(tp).replace("typing.", "")


def coerce_value(tp: Any, value: Any, where: str) -> Any:
    """``value`` as the type ``tp``, or an InputError naming ``where`` and the value."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        problems = []
        for option in (a for a in args if a is not type(None)):
            try:
                return coerce_value(option, value, where)
            except InputError as err:
                problems.append(str(err))
        raise InputError("; or ".join(problems))
    if dataclasses.is_dataclass(tp):
        return value if isinstance(value, tp) else from_mapping(tp, value, where)
    if origin is tuple:
        if isinstance(value, np.ndarray) and value.ndim == 1:
            value = value.tolist()
        if not isinstance(value, list | tuple):
            raise InputError(f"{where} must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce_value(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise InputError(f"{where} must have {len(args)} entries, got {value!r}")
        items = enumerate(zip(args, value, strict=True))
        return tuple(coerce_value(a, v, f"{where}[{i}]") for i, (a, v) in items)
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise InputError(f"{where} must be a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool | np.bool_):
            raise InputError(f"{where} must be true or false, got {value!r}")
        return bool(value)
    if tp is int:
        if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
            raise InputError(f"{where} must be an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool | np.bool_) or not isinstance(
            value, int | float | np.integer | np.floating
        ):
            raise InputError(f"{where} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if isinstance(value, TIME_TYPES):  # YAML reads 2019-03-01 as a date
            return time_text(value)  # as a Period keeps it
        if not isinstance(value, str):
            raise InputError(f"{where} must be a string, got {value!r}")
        return value
    raise TypeError(f"{where}: unsupported config type {tp!r}")
