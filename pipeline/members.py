"""Which members of an ensemble to verify: an operational ensemble's perturbed members
without its control forecast (``wxens verify --members perturbed``), in the wxens layout
(:func:`pipeline.adapters.to_wxens_forecast`)."""

from __future__ import annotations

import logging

import xarray as xr

from pipeline.adapters import to_wxens_forecast
from pipeline.errors import InputError
from pipeline.schema import CONTROL_MEMBER, MEMBER

log = logging.getLogger(__name__)


def perturbed_members(ds: xr.Dataset, origin: object) -> xr.Dataset:
    """``ds`` (any layout, as opened) in the wxens layout without its control member.

    The control is the member the file names (:data:`pipeline.schema.CONTROL_MEMBER`, set
    for a GRIB holding both ``cf`` and ``pf`` messages); a GRIB of ``pf`` messages only, and
    a wxens forecast store (a generator's or a baseline's draws, none of them a control),
    are returned whole, so one verify schedule serves an ENS file and wxens stores alike.
    Anything else is an InputError naming ``origin``: which member is the control is not
    something to guess.
    """
    control = ds.attrs.get(CONTROL_MEMBER)
    forecast = to_wxens_forecast(ds)
    if control is not None:
        return forecast.drop_sel({MEMBER: [control]})
    if ds.data_vars and all(da.attrs.get("GRIB_dataType") == "pf" for da in ds.data_vars.values()):
        return forecast
    if ds.attrs.get("kind") == "forecast" and "wxens_software" in ds.attrs:
        log.info("%s: a wxens forecast store has no control member; every member verified", origin)
        return forecast
    raise InputError(
        f"{origin}: does not say which member is the control forecast (only a GRIB file "
        "of control (dataType cf) and perturbed (pf) messages does); verify all its members: "
        "members='all' (--members all)"
    )
