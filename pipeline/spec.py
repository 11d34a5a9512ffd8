"""One typed ``key=value`` parser for the short specs users type on a command line.

A spec is a name, optionally followed by ``:`` and comma-separated ``key=value`` items::

    synthetic:n_lat=16,n_lon=24,step=6h,levels=500/850
    edm_heun:num_steps=20,churn=2.5

The keys are the fields of a frozen dataclass and each value is coerced to its field's
type (:func:`coerce`): ``int`` (whole numbers only), ``float``, ``bool``
(``true``/``false``), ``str``, ``pd.Timestamp`` (``2000-01-01T06``), ``pd.Timedelta``
(``6h``) and ``tuple[X, ...]`` (items joined by ``/``). :func:`format_spec` writes the
inverse, so ``parse(format(x)) == x``. Every error is an :class:`InputError` that names
the spec, the key and the bad value, and lists the known keys when the key is unknown.

:func:`split_pair` is the tokeniser of one ``key=value`` item; ``--set key.sub=value``
overrides of a config file use it too.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import InputError

#: Separator of the items of a tuple value (``levels=500/850``): not ``,``, which
#: separates the ``key=value`` items.
TUPLE_SEPARATOR = "/"

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def split_scheme(spec: str) -> tuple[str, str]:
    """``"name:key=value,..."`` -> ``("name", "key=value,...")``; no ``:`` gives ``""``."""
    name, _, body = spec.partition(":")
    return name.strip(), body


def split_pair(
    item: str, *, what: str, form: str = "key=value", known: Iterable[str] = ()
) -> tuple[str, str]:
    """One ``key=value`` item -> ``(key, value text)``, both stripped.

    An item without ``=`` or with an empty key is an :class:`InputError` naming ``what``
    (e.g. the whole spec), the item, the expected ``form`` and the ``known`` keys if any.
    """
    key, sep, text = (s.strip() for s in item.partition("="))
    if not sep or not key:
        raise InputError(f"{what}: {item!r} is not {form}{_known(known)}")
    return key, text


def split_items(body: str, *, what: str, known: Iterable[str] = ()) -> dict[str, str]:
    """``"a=1, b=2"`` -> ``{"a": "1", "b": "2"}``: items split on ``,``, empty ones skipped;
    a malformed item or a key given twice is an :class:`InputError`."""
    known = tuple(known)
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in body.split(","))):
        key, text = split_pair(item, what=what, known=known)
        if key in out:
            raise InputError(f"{what}: {key!r} is given twice")
        out[key] = text
    return out


@functools.cache
def field_types(cls: type) -> Mapping[str, Any]:
    """The init fields of the dataclass ``cls`` and their resolved types, in order."""
    hints = typing.get_type_hints(cls)
    return types.MappingProxyType(
        {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}
    )


def parse_fields(cls: type, body: str, *, what: str) -> dict[str, Any]:
    """The ``key=value,...`` items of ``body`` as keyword arguments of the dataclass
    ``cls``, each coerced to its field's type (only the keys given)."""
    types_ = field_types(cls)
    values: dict[str, Any] = {}
    for key, text in split_items(body, what=what, known=types_).items():
        if key not in types_:
            raise InputError(f"{what}: unknown key {key!r}{_known(types_)}")
        values[key] = coerce_field(types_[key], text, key=key, what=what)
    return values


def format_spec(obj: Any, *, changed_only: bool = False) -> str:
    """Every field of the dataclass instance ``obj`` as ``key=value,...`` (the inverse of
    :func:`parse_fields`); with ``changed_only``, those that differ from their defaults,
    which parse back to the same ``obj`` and fit a message's label."""
    fields = [f for f in dataclasses.fields(obj) if f.init]
    if changed_only:
        fields = [f for f in fields if getattr(obj, f.name) != f.default]
    return ",".join(f"{f.name}={format_value(getattr(obj, f.name))}" for f in fields)


def format_value(value: Any) -> str:
    """One value as :func:`coerce` reads it back: floats by ``repr`` (shortest round trip),
    durations in whole seconds, times in ISO 8601, tuples joined by ``/``."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return repr(float(value))
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, pd.Timedelta):
        return f"{int(value.total_seconds())}s"
    if isinstance(value, tuple | list):
        return TUPLE_SEPARATOR.join(format_value(v) for v in value)
    return str(value)


def coerce_field(tp: Any, value: Any, *, key: str, what: str) -> Any:
    """:func:`coerce`, with a failure as an :class:`InputError` naming ``what``, the key,
    the bad value and the expected type."""
    try:
        return coerce(tp, value)
    except (TypeError, ValueError, OverflowError) as err:  # OverflowError: int(inf)
        raise InputError(f"{what}: {key}={value!r} is not {describe(tp)} ({err})") from err


def coerce(tp: Any, value: Any) -> Any:
    """``value`` (text as typed, or already a Python value) as the type ``tp``.

    Raises ``ValueError`` or ``TypeError`` when it is not one: a float with a fractional
    part for an ``int``, ``"maybe"`` for a ``bool``. ``Optional[X]`` takes ``none`` (or
    None) for None.
    """
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and (value is None or str(value).strip().lower() == "none"):
            return None
        (inner,) = (a for a in args if a is not type(None))
        return coerce(inner, value)
    if origin is tuple:
        if len(args) != 2 or args[1] is not Ellipsis:
            raise TypeError(f"unsupported spec type {tp!r}: use tuple[X, ...]")
        items = value.split(TUPLE_SEPARATOR) if isinstance(value, str) else value
        return tuple(coerce(args[0], item) for item in items)
    parse = _COERCERS.get(tp)
    if parse is None:
        raise TypeError(f"unsupported spec type {tp!r}")
    return parse(value.strip() if isinstance(value, str) else value)


def describe(tp: Any) -> str:
    """What a value of type ``tp`` looks like, for error messages."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [describe(a) for a in args if a is not type(None)]
        return " or ".join(inner + (["none"] if type(None) in args else []))
    if origin is tuple:
        plural = _PLURALS.get(args[0], "values")
        return f"{plural} joined by {TUPLE_SEPARATOR!r}, such as 500/850"
    return _DESCRIPTIONS.get(tp, getattr(tp, "__name__", str(tp)))


def _exact_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("a boolean, not a number")
    if isinstance(value, float | np.floating) and not float(value).is_integer():
        raise ValueError("not a whole number")
    return int(value)


def to_timedelta(value: Any) -> pd.Timedelta:
    """``pd.Timedelta`` of ``value``, taking ``5d`` for five days as people write it
    (pandas deprecates the lower-case day unit); ValueError if it is not a duration, or is
    a bare number (pandas reads ``"7"`` as 7 ns: ``compact --keep 7`` forgot a week's
    history; ``--budget 3`` bought no training step) or NaT (``nan``, an empty string)."""
    if isinstance(value, str):
        if re.fullmatch(r"[-+]?\d+(\.\d*)?", value.strip()):
            number = value.strip()
            raise ValueError(
                f"{value!r} has no unit; write e.g. {number}h, {number}d or {number}min"
            )
        value = re.sub(r"(?<=\d)\s*d$", "D", value.strip())
    duration = pd.Timedelta(value)
    if pd.isna(duration):  # pandas reads "nan", "NaT" and "" as NaT, not as an error
        raise ValueError(f"{value!r} is not a duration")
    return duration


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError("a boolean, not a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _bool(value: Any) -> bool:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected one of {', '.join(_TRUE + _FALSE)}")


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"a {type(value).__name__}, not text")
    return value


_COERCERS: dict[Any, Callable[[Any], Any]] = {
    int: _exact_int,
    float: _float,
    bool: _bool,
    str: _str,
    pd.Timestamp: pd.Timestamp,
    pd.Timedelta: lambda value: to_timedelta(value),
}
_DESCRIPTIONS: dict[Any, str] = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "text",
    pd.Timestamp: "a date-time such as 2000-01-01T00",
    pd.Timedelta: "a duration such as 6h",
}
_PLURALS: dict[Any, str] = {int: "integers", float: "numbers", str: "words"}


def _known(keys: Iterable[str]) -> str:
    keys = tuple(keys)
    return f"; valid keys: {', '.join(keys)}" if keys else ""
