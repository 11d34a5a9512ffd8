"""The global attributes CF asks of a file (2.6.2) that a forecaster's tool shows first: a
``title`` saying what it holds, a ``history`` of the commands that made it and, of a
forecast, a ``source`` naming the generator, checkpoint and sampler its store records, for
the copies ``wxens export`` and the products ``wxens products`` write. A store's own title,
its ``source`` and its history (ingest's lines) are kept; the command is appended."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import xarray as xr

from pipeline.analysis_store import with_history
from pipeline.forecast_provenance import ForecastProvenance
from pipeline.schema import INIT_TIME, TIME


def titled(
    ds: xr.Dataset, title: str, command: Sequence[str], made_from: Mapping[str, Any] | None = None
) -> xr.Dataset:
    """``ds`` (attributes copied) with ``title`` unless it has its own, ``source`` unless it
    has its own where ``made_from`` (the attributes of what ``ds`` was made from, a forecast
    store's; None: ``ds``'s own) records a generator (:func:`forecast_source`), and
    ``command`` (a wxens command line's words, quoted as a shell needs) appended to
    ``made_from``'s ``history``, timestamped in UTC and bounded as a store's
    (:func:`with_history`)."""
    made_from = ds.attrs if made_from is None else made_from
    out = ds.copy(deep=False)
    out.attrs = dict(ds.attrs)
    out.attrs.setdefault("title", title)
    source = forecast_source(made_from)
    if source:
        out.attrs.setdefault("source", source)
    line = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} {shlex.join(command)}"
    out.attrs["history"] = with_history(str(made_from.get("history", "")), line)
    return out


def forecast_source(attrs: Mapping[str, Any]) -> str | None:
    """CF's ``source`` of a forecast store's file: the production its ``attrs`` record
    (:meth:`ForecastProvenance.production`, with the wxens named first in
    ``wxens_software``); None where they record no generator (an analysis store keeps its
    own ``source``; a plain Zarr gets none: nothing is invented)."""
    if "wxens_generator" not in attrs:
        return None
    wxens = str(attrs.get("wxens_software", "wxens")).split(", ")[0]
    return ForecastProvenance.from_attrs(dict(attrs)).production(wxens)


def contents(what: str, ds: xr.Dataset) -> str:
    """``"wxens forecast of t2m, z, initialised 2019-03-20 18 UTC to 2019-03-22 00 UTC"``:
    ``what``, the variables of ``ds`` and the span of its initial times (else its times),
    one time said once."""
    text = f"wxens {what} of {', '.join(map(str, ds.data_vars))}"
    for name, said in ((INIT_TIME, "initialised "), (TIME, "")):
        if name in ds.coords and ds[name].size:
            times = pd.DatetimeIndex(ds[name].values.ravel())
            first, last = _hour(times.min()), _hour(times.max())
            return f"{text}, {said}{first}" + (f" to {last}" if last != first else "")
    return text


def _hour(time: pd.Timestamp) -> str:
    """``2019-03-20 18 UTC``, or with minutes where the time is not on the hour."""
    return f"{time:%Y-%m-%d %H UTC}" if time.minute == 0 else f"{time:%Y-%m-%d %H:%M UTC}"
