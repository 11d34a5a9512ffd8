"""The global attributes CF asks of a file (2.6.2) that a forecaster's tool shows first: a
``title`` saying what it holds and a ``history`` of the commands that made it, for the
copies ``wxens export`` and the products ``wxens products`` write. A store's own title, its
``source`` and its history (ingest's lines) are kept; the command is appended."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from datetime import UTC, datetime

import pandas as pd
import xarray as xr

from pipeline.analysis_store import with_history
from pipeline.schema import INIT_TIME, TIME


def titled(ds: xr.Dataset, title: str, command: Sequence[str], history: str = "") -> xr.Dataset:
    """``ds`` (attributes copied) with ``title`` unless it has its own, and ``command`` (a
    wxens command line's words, quoted as a shell needs) appended to ``history`` (else its
    own), timestamped in UTC and bounded as a store's (:func:`with_history`)."""
    out = ds.copy(deep=False)
    out.attrs = dict(ds.attrs)
    out.attrs.setdefault("title", title)
    line = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} {shlex.join(command)}"
    out.attrs["history"] = with_history(history or str(ds.attrs.get("history", "")), line)
    return out


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
