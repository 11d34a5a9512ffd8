"""Which members of an ensemble to verify, or to make products and plumes of: every one, or
an operational ensemble's perturbed members without its control forecast (``--members
perturbed`` of ``wxens verify``, ``wxens products`` and ``wxens plume``), in the wxens
layout (:func:`pipeline.adapters.to_wxens_forecast`)."""

from __future__ import annotations

import logging

import xarray as xr

from pipeline.adapters import to_wxens_forecast
from pipeline.errors import InputError
from pipeline.schema import CONTROL_MEMBER, MEMBER

log = logging.getLogger(__name__)

#: What ``members=`` (``--members``) may be: every member, or all but the control.
MEMBER_CHOICES = ("all", "perturbed")


def chosen_members(ds: xr.Dataset, members: str, origin: object) -> xr.Dataset:
    """``ds`` (as opened, any layout) in the wxens layout, of the members ``members`` names:
    ``all`` is every one (:func:`in_wxens_layout`), ``perturbed`` is :func:`perturbed_members`;
    one meaning for every command taking ``--members``. InputError naming the choices for
    anything else (:func:`check_members`)."""
    check_members(members)
    if members == "perturbed":
        return perturbed_members(ds, origin)
    return in_wxens_layout(ds, origin)


def check_members(members: object) -> None:
    """InputError naming the choices where ``members`` is not one of :data:`MEMBER_CHOICES`:
    a schedule's ``members:`` refused before its run starts, not when it reads."""
    if members not in MEMBER_CHOICES:
        raise InputError(f"members={members!r}: expected one of {', '.join(MEMBER_CHOICES)}")


def in_wxens_layout(ds: xr.Dataset, origin: object) -> xr.Dataset:
    """``ds`` in the wxens layout; the mapping's InputError names ``origin``, which the
    mapping does not know."""
    try:
        return to_wxens_forecast(ds)
    except InputError as err:
        raise InputError(f"{origin}: {err}") from None


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
    forecast = in_wxens_layout(ds, origin)
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
