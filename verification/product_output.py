"""``wxens products``' library part: the events it is asked for (``t2m<0degC``) parsed and
put in the forecast's units, the forecast read in the units asked for (``--units
t2m=degC``), and the products dataset written to Zarr or CF NetCDF, lazily.

Units go through the tables ingest and verify use (:func:`verification.output.unit_factors`
for ``--units``, :func:`verification.output.conversion` for a threshold's), never a parser
of their own; the output is written by :func:`pipeline.store_export.write_aside`, as
``wxens export`` writes (aside, then renamed; an existing output refused).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

from pipeline.adapters import scaled
from pipeline.errors import InputError
from pipeline.file_attrs import contents, titled
from pipeline.members import chosen_members
from pipeline.normalize import UNIT_CONVERSIONS, canonical_units
from pipeline.store_export import write_aside
from verification.output import conversion, unit_factors
from verification.products import PRODUCTS, Probability, Product, field
from verification.run import open_forecast_any, select_init_times

#: Root attribute of a products output: :func:`products_record` (``{"forecast": the absolute
#: path it was made from, ...}``); ``--overwrite`` replaces only a path holding it.
PRODUCTS_ATTR = "wxens_products"
_EVENT = re.compile(
    r"^\s*(?P<variable>[A-Za-z_]\w*)\s*(?P<sign>[<>])\s*"
    r"(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(?P<unit>.*?)\s*$"
)
EVENT_EXAMPLE = "'t2m<0degC' (frost), 'u10>15m s-1' or 'z500<5500m2 s-2'"
#: Units that mean "a number": a threshold of such a variable needs none.
DIMENSIONLESS = ("", "1")
NOTHING_ASKED = (
    "products= (--mean, --spread, --quantiles, --probability): ask for at least one "
    "product, e.g. `wxens products FORECAST --out P.nc --mean --probability 't2m<0degC'`"
)


@dataclass(frozen=True)
class Event:
    """``variable`` (or channel) strictly below or above ``value`` in ``unit`` (``""``:
    none given), as typed (``t2m<0degC``)."""

    variable: str
    below: bool
    value: float
    unit: str
    text: str

    def probability(self, ensemble: xr.Dataset) -> Probability:
        """The :class:`~verification.products.Probability` of this event in ``ensemble``,
        its threshold converted to the variable's units; InputError naming the variable
        and the fix where the units are missing or do not convert."""
        try:
            da = field(ensemble, self.variable)
        except InputError as err:
            raise InputError(f"events= (--probability {self.text!r}): {err}") from None
        units = canonical_units(str(da.attrs.get("units", "")))
        if not self.unit and units not in DIMENSIONLESS:
            raise InputError(
                f"events= (--probability {self.text!r}): {self.variable} is in {units!r}; "
                f"give the threshold's units, e.g. '{self.variable}{'<' if self.below else '>'}"
                f"{self.value:g}{units}'"
            )
        converts = conversion(self.unit or units, units)
        if converts is None:
            known = ", ".join(sorted({f"{a}<->{b}" for a, b in UNIT_CONVERSIONS}))
            raise InputError(
                f"events= (--probability {self.text!r}): {self.variable} is in {units!r}, which "
                f"{self.unit!r} does not convert to; known conversions: {known}"
            )
        scale, offset = converts
        return Probability(self.variable, self.value * scale + offset, self.below)


def parse_event(text: str) -> Event:
    """``"t2m<0degC"`` -> ``Event("t2m", below=True, value=0.0, unit="degC")``: a variable
    or channel, ``<`` or ``>`` (strict), a number and its units (any spelling
    :func:`pipeline.normalize.canonical_units` knows); InputError with an example else."""
    match = _EVENT.match(text)
    if match is None:
        raise InputError(
            f"events= (--probability {text!r}): not VARIABLE<VALUE[UNITS] or "
            f"VARIABLE>VALUE[UNITS]; e.g. {EVENT_EXAMPLE}"
        )
    unit = canonical_units(match["unit"]) if match["unit"] else ""
    return Event(match["variable"], match["sign"] == "<", float(match["value"]), unit, text)


def parse_percents(text: str) -> tuple[float, ...]:
    """``"10,50,90"`` -> the quantiles ``(0.1, 0.5, 0.9)``; InputError with an example where
    ``text`` is not percents in [0, 100] separated by commas."""
    try:
        percents = [float(p) for p in text.split(",")]
    except ValueError:
        percents = [-1.0]
    if not all(0 <= p <= 100 for p in percents):
        raise InputError(
            f"quantiles= (--quantiles {text!r}): give percents in [0, 100] separated by "
            "commas, e.g. 10,50,90"
        )
    return tuple(p / 100 for p in percents)


@dataclass(frozen=True)
class ProductRequest:
    """The products asked for, as ``wxens products``' flags give them (``--mean``,
    ``--spread``, ``--quantiles 10,50,90``, ``--probability t2m<0degC``, ``--units
    t2m=degC``) and a schedule's ``products:`` mapping names them: one form for the command,
    ``wxens run`` and the flows, parsed by :meth:`parsed` alone."""

    mean: bool = False
    spread: bool = False
    quantiles: str | None = None
    probability: tuple[str, ...] = ()
    units: tuple[str, ...] = ()

    @classmethod
    def of(cls, given: dict[str, Any], where: str = "products") -> ProductRequest:
        """The request of a mapping of those names (a flow parameter, JSON); InputError
        naming ``where`` and the keys allowed for another key, or a list given as one text."""
        known = [f.name for f in fields(cls)]
        if not isinstance(given, dict) or set(given) - set(known):
            raise InputError(
                f"{where}: {given!r}: give a mapping of {', '.join(known)}, e.g. "
                "{mean: true, quantiles: '10,50,90', probability: ['t2m<0degC']}"
            )
        for name in ("probability", "units"):
            if isinstance(given.get(name), str):
                raise InputError(f"{where}: {name}: give a list, e.g. [{given[name]!r}]")
        quantiles = given.get("quantiles")
        return cls(
            mean=bool(given.get("mean")),
            spread=bool(given.get("spread")),
            quantiles=None if quantiles is None else str(quantiles),
            probability=tuple(given.get("probability") or ()),
            units=tuple(given.get("units") or ()),
        )

    def parsed(self) -> tuple[list[Product], list[Event]]:
        """The products and events asked for, by :func:`parse_event` and
        :func:`parse_percents`; InputError for a bad spec or where nothing is asked for
        (before any read)."""
        events = [parse_event(text) for text in self.probability]
        products = [PRODUCTS[name]() for name in ("mean", "spread") if getattr(self, name)]
        if self.quantiles:
            products.append(PRODUCTS["quantiles"](parse_percents(self.quantiles)))
        if not products and not events:
            raise InputError(NOTHING_ASKED)
        return products, events

    def flags(self) -> list[str]:
        """The ``wxens products`` flags asking for this request, as its history records it:
        ``["--mean", "--quantiles", "10,90", "--probability", "t2m<0degC"]``."""
        words = [f"--{name}" for name in ("mean", "spread") if getattr(self, name)]
        words += ["--quantiles", self.quantiles] if self.quantiles else []
        for name in ("probability", "units"):
            words += [word for value in getattr(self, name) for word in (f"--{name}", value)]
        return words


def in_units(ensemble: xr.Dataset, wanted: Sequence[str]) -> xr.Dataset:
    """``ensemble`` with each variable ``--units`` names (``t2m=degC``, or a unit every
    variable converting to it takes) converted in full (K to degC subtracts 273.15) and
    relabelled; InputError from :func:`verification.output.unit_factors` for an unknown
    variable or a conversion the tables lack."""
    store_units = {str(n): str(da.attrs.get("units", "")) for n, da in ensemble.data_vars.items()}
    converted = {}
    for name, (unit, _) in unit_factors(wanted, store_units, "the forecast").items():
        scale, offset = conversion(store_units[name], unit) or (1.0, 0.0)
        da = ensemble[name]
        converted[name] = scaled(da, scale, offset).assign_attrs({**da.attrs, "units": unit})
    return ensemble.assign(converted)


def products_dataset(
    ensemble: xr.Dataset,
    products: Sequence[Product],
    events: Sequence[Event] = (),
    origin: object = "",
) -> xr.Dataset:
    """The fields of ``products`` and of the probability of each of ``events`` from the
    wxens-layout ``ensemble``, lazily where it is dask-backed; attributes: :data:`PRODUCTS_ATTR`
    naming ``origin``. InputError where nothing is asked for, or where two products would
    write one field (:func:`_one_name_each`)."""
    chosen = [
        *((repr(product), product) for product in products),
        *((f"--probability {e.text!r}", e.probability(ensemble)) for e in events),
    ]
    if not chosen:
        raise InputError(NOTHING_ASKED)
    fields: dict[str, xr.DataArray] = {}
    asked: dict[str, tuple[str, Product]] = {}
    for said, product in chosen:
        for name, da in product.fields(ensemble).items():
            if name in asked:
                raise _one_name_each(name, asked[name], (said, product))
            asked[name] = (said, product)
            fields[name] = da
    return xr.Dataset(fields, attrs={PRODUCTS_ATTR: {"forecast": str(origin)}})


def _one_name_each(
    name: str, first: tuple[str, Product], second: tuple[str, Product]
) -> InputError:
    """The refusal of two products of one field ``name``, each ``(as asked, product)``: the
    second replaced the first in the output, unsaid. A probability's name spells its
    threshold to 6 significant digits (:func:`~verification.products.threshold_text`), so
    ``t2m<273.150001K`` and ``t2m<273.15K`` share one. The same event asked twice
    (``t2m<0degC``, ``t2m<273.15K``) is refused too, not collapsed: a request naming an
    event twice was likely meant otherwise, and one rule keeps a field per event asked."""
    same = first[1] == second[1]
    why = (
        "the same event asked twice"
        if same
        else ("thresholds equal to 6 significant digits, the digits the name spells")
    )
    fix = "ask it once" if same else "ask one of them, or thresholds further apart"
    return InputError(f"events= ({first[0]} and {second[0]}): {why}, both named {name!r}; {fix}")


def products_record(
    forecast: str | Path,
    request: ProductRequest,
    init_times: Sequence[Any] | None,
    members: str = "all",
    init_from_filename: str | None = None,
) -> dict[str, Any]:
    """What :func:`write_products` records in :data:`PRODUCTS_ATTR`: the forecast (its
    absolute path, where it is one), the request, the initial times asked (sorted ISO
    texts; None: all), the members (``all`` or ``perturbed``) and the file-name format of
    one file per start date (None: none), as JSON values; a scheduled rerun compares it
    with its own to see whether another run or a hand-run ``wxens products --overwrite``
    replaced the file, and ``wxens info`` shows it as the flags that remake the file."""
    origin = Path(forecast).resolve() if Path(forecast).exists() else forecast
    times = (
        None if init_times is None else sorted({pd.Timestamp(t).isoformat() for t in init_times})
    )
    asked = {name: list(v) if isinstance(v, tuple) else v for name, v in asdict(request).items()}
    return {
        "forecast": str(origin),
        "request": asked,
        "init_times": times,
        "members": members,
        "init_from_filename": init_from_filename,
    }


def reading_flags(init_from_filename: str | None, members: str | None) -> list[str]:
    """The ``wxens products`` flags of how the forecast was read, beyond the request: one
    file per start date, its date from ``init_from_filename``, and ``members`` other than
    all; the history's command and ``wxens info``'s ``asked`` line alike."""
    flags = ["--init-from-filename", init_from_filename] if init_from_filename else []
    return flags + (["--members", members] if members not in (None, "all") else [])


def write_products(
    forecast: str | Path,
    out: str | Path,
    request: ProductRequest,
    *,
    init_times: Sequence[Any] | None = None,
    init_from_filename: str | None = None,
    members: str = "all",
    overwrite: bool = False,
    progress: bool = True,
) -> tuple[Path, list[str]]:
    """Read the ensemble at ``forecast`` (a wxens forecast store, or any layout ``wxens
    verify`` reads; files of one start date each with ``init_from_filename``, as it reads
    them) at ``init_times`` (None: all) and of its ``members`` (``all``, or ``perturbed`` to
    leave out an ENS file's control: :func:`pipeline.members.chosen_members`), compute the
    products and probabilities ``request`` asks for in its units and write them to ``out``
    (Zarr, or CF NetCDF-4 for ``.nc``), streamed through dask; what ``wxens products`` and a
    scheduled run's products step write (its cycles', not the whole store's, which grows
    with each cycle it keeps).
    InputError for a bad request before any read, and for an initial time the forecast
    lacks (:func:`verification.run.select_init_times`); StoreError where ``out`` exists,
    unless ``overwrite`` and it is an earlier products output. Returns ``out`` and the
    names of the fields written."""
    products, events = request.parsed()
    out = Path(out)
    try:
        opened = open_forecast_any(forecast, init_from_filename)
    except InputError as err:
        raise InputError(f"{forecast}: {err}") from None
    ensemble = chosen_members(opened, members, forecast)
    if init_times is not None:
        ensemble = select_init_times(ensemble, init_times, forecast)
    ensemble = in_units(ensemble, request.units) if request.units else ensemble
    inits = [] if init_times is None else ["--init", *map(str, init_times)]
    inits += reading_flags(init_from_filename, members)
    record = products_record(forecast, request, init_times, members, init_from_filename)
    ds = titled(
        products_dataset(ensemble, products, events, record["forecast"]),
        contents("ensemble products", ensemble),
        ["wxens", "products", str(forecast), "--out", str(out), *request.flags(), *inits],
        ensemble.attrs,
    )
    ds.attrs[PRODUCTS_ATTR] = record
    write_aside(
        ds, out, mark=PRODUCTS_ATTR, verb="products", progress=progress, overwrite=overwrite
    )
    return out, [str(name) for name in ds.data_vars]
