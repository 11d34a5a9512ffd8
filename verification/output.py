"""Files written whole or not at all: :func:`atomic_output`, and :func:`write_scores`
(the verification tree as NetCDF groups); the scorecard's units as CF readers take them
(:func:`cf_units`); scores shown in other units than the store's (:func:`unit_factors`,
:func:`card_in_units`, :func:`conversion`), for printing and the report only."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import resource
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from numbers import Number
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.errors import InputError
from pipeline.normalize import UNIT_CONVERSIONS, canonical_units
from pipeline.schema import LEAD_TIME, split_channel
from pipeline.temporaries import remove_left
from verification.config import VARIABLE
from verification.ranks import PASS_FACTOR, PASSES, pass_text

#: How long a temporary of :func:`atomic_output` goes unwritten before it is taken as a
#: killed write's (a live write touches it as it goes; an hour is far beyond any pause).
DEAD_TEMPORARY_S = 3600.0


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    A failure (or an interrupt) removes the temporary file, so ``path`` is either the
    previous file or the complete new one, never half-written; an OSError that names no
    file (a write's, on a full disk) is raised naming ``path``. A write killed before its
    rename (``kill -9``) leaves its temporary: the next write of ``path`` removes it
    once untouched for :data:`DEAD_TEMPORARY_S` (:func:`pipeline.temporaries.remove_left`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=path.suffix, dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        remove_left(path, path.suffix, idle_s=DEAD_TEMPORARY_S, keep=Path(tmp))
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as err:
        if err.filename is not None or err.errno is None:
            raise
        # a write's own error (a full disk, a file-size limit) names no file: name ``path``
        raise OSError(err.errno, err.strerror, str(path)) from err
    finally:
        Path(tmp).unlink(missing_ok=True)


#: How close to a file-size limit, or to no free space, a failed NetCDF write is taken as
#: refused by the file system (netCDF's 'HDF error' carries no errno): one HDF write's worth.
NETCDF_WRITE_SLACK = 2**20


def write_scores(tree: xr.DataTree, path: str | Path) -> Path:
    """Write the tree as NetCDF groups (reopen with ``xr.open_datatree``), atomically. A
    write the file system refuses is an OSError naming ``path`` (EFBIG, ENOSPC), as other
    outputs', not netCDF's 'RuntimeError: NetCDF: HDF error'."""
    with atomic_output(path) as tmp:
        try:
            _encodable(tree).to_netcdf(tmp, engine="netcdf4")
        except RuntimeError as err:
            code = _refused_by_file_system(tmp)
            if code is None:
                raise
            raise OSError(code, os.strerror(code), str(path)) from err
    return Path(path)


def _refused_by_file_system(tmp: Path) -> int | None:
    """EFBIG when the file ``tmp`` reached the process's file-size limit, ENOSPC when its
    file system has (next to) no space left, None otherwise."""
    limit, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    size = tmp.stat().st_size if tmp.exists() else 0
    if limit != resource.RLIM_INFINITY and size + NETCDF_WRITE_SLACK >= limit:
        return errno.EFBIG
    space = os.statvfs(tmp.parent)
    if space.f_bavail * space.f_frsize < NETCDF_WRITE_SLACK:
        return errno.ENOSPC
    return None


def _encodable(tree: xr.DataTree) -> xr.DataTree:
    """Attributes NetCDF can store (:func:`_attr`), of the root (the forecast's and the
    reference's provenance), of every group and of every variable."""

    def clean(ds: xr.Dataset) -> xr.Dataset:
        ds = ds.copy()
        for obj in (ds, *ds.variables.values()):
            obj.attrs = {k: _attr(v) for k, v in obj.attrs.items()}
        return ds

    return tree.map_over_datasets(clean)


def _attr(value: Any) -> Any:
    """``value`` as a NetCDF attribute: a string or number as it is, a boolean as an int, a
    list of strings or of numbers joined with ``"; "``, a numeric or text array as it is (a
    boolean one as ints); a dict, another list or array (of mixed types, of lists) as its
    JSON text, which ``json.loads`` reads back; another value (None, a time) as its text."""
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, str | bytes | Number | np.number):
        return value
    if isinstance(value, list | tuple) and (_all(value, str) or _all(value, Number)):
        return "; ".join(map(str, value))
    if isinstance(value, np.ndarray) and value.dtype.kind in "biufUS":
        return value.astype(np.int8) if value.dtype.kind == "b" else value
    if isinstance(value, dict | list | tuple | np.ndarray):
        return json.dumps(value, default=_jsonable)
    return str(_jsonable(value))


def _all(items: Sequence[Any], kind: type) -> bool:
    """Whether every item is a ``kind`` and none a boolean (True is a Number)."""
    return all(isinstance(i, kind) and not isinstance(i, bool | np.bool_) for i in items)


def _jsonable(value: Any) -> Any:
    """What JSON writes for a value it has no type for: a NumPy value's Python value (an
    array's list; a time's text), or the value's text (a pandas time, a path)."""
    if isinstance(value, np.ndarray | np.generic):
        if value.dtype.kind in "Mm":
            return np.asarray(value).astype(str).tolist()
        return value.tolist()
    return str(value)


#: Root attributes of a scores file naming its inputs (:func:`verification.run.verify_store`):
#: the forecast's path, the reference's (only where one was given), the truth's path (all as
#: given), the truth store's identity (its ingest state's id: another store, or one
#: re-ingested with ``--overwrite``, has another) and the times it held. ``wxens compare``
#: refuses files of other truth store ids.
FORECAST_PATH = "forecast_path"
REFERENCE_PATH = "reference_path"
TRUTH_PATH = "truth_path"
TRUTH_STORE_ID = "truth_store_id"
TRUTH_TIMES = "truth_times"

#: The scorecard's coordinate along ``variable``: each variable's units (the truth's).
VARIABLE_UNITS = "variable_units"
#: The ``/spectra`` group's coordinate along ``variable``: the units of each variable's power
#: spectrum (:func:`spectrum_units`).
POWER_UNITS = "power_units"
#: The attribute of a score in the verified variable's units (or a spectrum in its power's):
#: it names :data:`VARIABLE_UNITS` (:data:`POWER_UNITS`), where its unit is read per variable.
UNITS_PER_VARIABLE = "units_per_variable"
#: The registry's markers of a field in units of the variable (``units="variable"``) or of
#: its power spectrum (``"variable power"``), and the coordinate each is read in.
UNITS_READ_IN = {"variable": VARIABLE_UNITS, "variable power": POWER_UNITS}

_POWER = re.compile(r"([A-Za-z]+)(-?[0-9]+)?")


def spectrum_units(units: str, per_metre: bool) -> str | None:
    """The UDUNITS units of the power spectrum of a field in ``units`` (a product of powers
    of symbols, as CF writes them): ``units`` squared, times metres where the spectrum is a
    density per unit wavenumber (``per_metre``: the zonal spectrum of a global grid; the
    isotropic one of a regional grid is the variance in each ring, :mod:`verification.
    spectra`). ``"K"`` -> ``"K2 m"``, ``"m2 s-2"`` -> ``"m5 s-4"``, ``"1"`` -> ``"m"``;
    None where ``units`` is not such a product (``"%"``, ``"kg m**-2"``, empty)."""
    if not units.split():
        return None
    powers: dict[str, int] = {}
    for word in units.split():
        if word == "1":
            continue
        if (match := _POWER.fullmatch(word)) is None:
            return None
        symbol, exponent = match[1], int(match[2] or 1)
        powers[symbol] = powers.get(symbol, 0) + 2 * exponent
    if per_metre:
        powers["m"] = powers.get("m", 0) + 1
    words = [s if e == 1 else f"{s}{e}" for s, e in powers.items() if e != 0]
    return " ".join(words) or "1"


def cf_units(card: xr.Dataset) -> xr.Dataset:
    """A group of the verification tree (the scorecard, the maps, the spectra...) with a
    ``units`` attribute CF and xarray readers take for a unit.

    A score or field in the verified variable's units (``units="variable"``, the registry's
    marker, not a unit) names the coordinate :data:`VARIABLE_UNITS` in
    :data:`UNITS_PER_VARIABLE`, and reads ``units`` only where every variable has the same
    units (``"K"``: one unit for the whole array); a power spectrum (``"variable power"``)
    the same with :data:`POWER_UNITS`. The entries without units (rank flatness, Brier
    scores, counts) are dimensionless, ``"1"``. A score with a real unit keeps it."""
    out = card.copy()
    for name, da in card.data_vars.items():
        attrs = dict(da.attrs)
        coordinate = UNITS_READ_IN.get(attrs.get("units", ""))
        if coordinate is not None:
            del attrs["units"]
            attrs[UNITS_PER_VARIABLE] = coordinate
            units = {str(u) for u in card[coordinate].values} if coordinate in card else set()
            if len(units) == 1 and (shared := units.pop()):
                attrs["units"] = shared
        elif "units" not in attrs:
            attrs["units"] = "1"
        out[name].attrs = attrs
    return out


def unit_factors(
    wanted: Sequence[str], store_units: Mapping[str, str], holder: str = "the truth"
) -> dict[str, tuple[str, float]]:
    """``{variable: (unit, factor)}`` from ``--units`` items ``UNIT`` (every variable
    whose units convert to it) or ``VARIABLE=UNIT`` (``msl=hPa``; a channel such as
    ``z500`` names its variable). ``store_units``: each variable's units in the store,
    ``holder`` (named in messages: "the truth", "the forecast").

    The factor converts a difference (a CRPS, an RMSE, a spread): the scale of
    :data:`pipeline.normalize.UNIT_CONVERSIONS` (or its inverse) without the offset, so K
    to degC is 1. An unknown variable or a conversion the table lacks is an InputError."""
    known = sorted({f"{a}<->{b}" for a, b in UNIT_CONVERSIONS})
    factors: dict[str, tuple[str, float]] = {}
    for item in wanted:
        name, _, unit = item.rpartition("=")
        unit = canonical_units(unit.strip())
        if name:
            try:
                variable = split_channel(name.strip())[0]
            except ValueError:
                variable = name.strip()
            if variable not in store_units:
                raise InputError(
                    f"units= (--units {item!r}): {holder} holds no variable {variable!r}; it "
                    f"holds {sorted(store_units)}"
                )
            factor = _difference_scale(store_units[variable], unit)
            if factor is None:
                raise InputError(
                    f"units= (--units {item!r}): {variable} is in {store_units[variable]!r}, "
                    f"which does not convert to {unit!r}; known conversions: {', '.join(known)}"
                )
            factors[variable] = (unit, factor)
            continue
        matched = {
            v: (unit, f)
            for v, u in store_units.items()
            if (f := _difference_scale(u, unit)) is not None
        }
        if not matched:
            raise InputError(
                f"units= (--units {item!r}): no variable of {holder} ({dict(store_units)}) "
                f"converts to {unit!r}; known conversions: {', '.join(known)}"
            )
        factors.update(matched)
    return factors


def _difference_scale(source: str, target: str) -> float | None:
    """The factor taking a difference in ``source`` units to ``target`` units, or None."""
    converts = conversion(source, target)
    return None if converts is None else converts[0]


def conversion(source: str, target: str) -> tuple[float, float] | None:
    """``(scale, offset)`` taking a value in ``source`` units to ``target`` units (``value *
    scale + offset``; K to degC: ``(1, -273.15)``), from :data:`pipeline.normalize.
    UNIT_CONVERSIONS` or its inverse, or None where it holds neither."""
    source, target = canonical_units(source), canonical_units(target)
    if source == target:
        return 1.0, 0.0
    if (source, target) in UNIT_CONVERSIONS:
        return UNIT_CONVERSIONS[source, target]
    if (target, source) in UNIT_CONVERSIONS:
        scale, offset = UNIT_CONVERSIONS[target, source]
        return 1.0 / scale, -offset / scale
    return None


def card_in_units(card: xr.Dataset, factors: Mapping[str, tuple[str, float]]) -> xr.Dataset:
    """A copy of the scorecard (dim ``variable``: channels) with every score in the
    verified variable's units (:data:`UNITS_PER_VARIABLE`, :func:`cf_units`) scaled by its
    variable's factor of :func:`unit_factors`; dimensionless scores unchanged."""
    scale = xr.DataArray(
        [factors.get(split_channel(str(c))[0], ("", 1.0))[1] for c in card[VARIABLE].values],
        dims=VARIABLE,
        coords={VARIABLE: card[VARIABLE]},
    )
    out = card.copy()
    for name, da in card.data_vars.items():
        if UNITS_PER_VARIABLE in da.attrs:  # printed with its unit: the store's no longer
            kept = {k: v for k, v in da.attrs.items() if k != "units"}
            out[name] = (da * scale).assign_attrs(kept)
    return out


#: The attribute of a scorecard entry that an extension registered: the extension, in words.
REGISTERED_BY = "registered_by"


def added_scores(card: xr.Dataset) -> list[str]:
    """The scores of ``card`` that extensions registered (:data:`REGISTERED_BY`), in its
    order: shown after the built-ins by the printed table, the report and ``wxens compare``,
    which lay out the built-ins themselves; read from the file, so that ``compare`` shows
    them where the extension is not installed."""
    return [str(n) for n, da in card.data_vars.items() if REGISTERED_BY in da.attrs]


#: Short headers of the printed scorecard (:func:`printable_card`); the file keeps the names.
PRINTED_HEADERS = {
    "fair_crps": "fair CRPS",
    "spread_skill_ratio": "spread/skill",
    "rank_max_min": "rank max/min",
    "rank_max_min_perfect_model": "perfect-model max/min",
    "rank_max_min_error_surrogate": "error floor max/min",
    PASSES: f"passes (<= {PASS_FACTOR:g} x error floor)",
    "reference_fair_crps": "reference CRPS",
    "fair_crps_skill_score": "skill",
    "fair_crps_minus_reference": "CRPS - reference",
    "n_verified": "verified",
    "n_verified_with_reference": "with reference",
    "n_missing_truth": "no truth",
    "n_missing_forecast": "no forecast",
}


def printable_card(card: xr.Dataset, columns: Sequence[str], units: Mapping[str, str]) -> str:
    """The scorecard's ``columns`` as a text table to print: a row per channel and lead (in
    hours), each score with its interval (``x_low``, ``x_high``) as ``x [low, high]`` (an
    interval without its score as ``[low, high]``), four significant digits, short headers
    (:data:`PRINTED_HEADERS`), and the unit of the scores in the variable's units
    (``units``: per variable). The scores file keeps full precision and the names."""
    bases = list(dict.fromkeys(c.removesuffix("_low").removesuffix("_high") for c in columns))
    rows = []
    for channel in card[VARIABLE].values:
        for lead in card[LEAD_TIME].values:
            one = card.sel({VARIABLE: channel, LEAD_TIME: lead})
            row = {"variable": str(channel), "lead (h)": f"{lead / np.timedelta64(1, 'h'):g}"}
            for base in bases:
                shown = _count if base.startswith("n_") else score_text  # n_verified, ...
                shown = pass_text if base == PASSES else shown
                text = shown(float(one[base])) if base in columns else ""
                if f"{base}_low" in columns and f"{base}_high" in columns:
                    interval = interval_text(one[f"{base}_low"], one[f"{base}_high"])
                    text = f"{text} {interval}".strip()
                row[PRINTED_HEADERS.get(base, base)] = text
            row["unit"] = units.get(split_channel(str(channel))[0], "")
            rows.append(row)
    return pd.DataFrame(rows).to_string(index=False)


def interval_text(low, high) -> str:
    """An interval as printed beside its score: ``[low, high]`` in :func:`score_text`'s
    digits, ``[n/a]`` where it could not be computed (too few blocks: NaN)."""
    low, high = float(low), float(high)
    return f"[{score_text(low)}, {score_text(high)}]" if np.isfinite(low) else "[n/a]"


def score_text(value: float) -> str:
    """Four significant digits, ``n/a`` for a score that could not be computed (NaN), ``inf``
    for an infinite one (a rank max/min over an empty bin: the worst flatness)."""
    return "n/a" if np.isnan(value) else f"{value:.4g}"


def _count(value: float) -> str:
    """A count of points in full (58212, not 5.821e+04), or ``n/a``."""
    return f"{int(round(value))}" if np.isfinite(value) else "n/a"
