"""A products output of one file per initial time: ``products_out`` (a schedule's, ``wxens
run --products-out``) or the products flow's ``out`` may hold the field ``{init:FORMAT}``,
Python's ``str.format`` of the initial time with strftime codes, e.g.
``products/uk_{init:%Y%m%dT%H}.nc``, so that each cycle's products land in a file of their
own, which a forecast office archives and a downstream system picks up by name. Without a
field the path is one file of all the initial times, as before."""

from __future__ import annotations

import re
from string import Formatter

import pandas as pd

from pipeline.errors import InputError, time_text

EXAMPLE = "products/uk_{init:%Y%m%dT%H}.nc"
FORMAT = re.compile(r"(?:%[YymdjHM]|[A-Za-z0-9_.-])+")
"""What a field's format may hold: the numeric strftime codes and the characters of a
portable file name (no '/', ':' or space, which ``%c`` or a locale's names would give)."""
SAMPLE = pd.Timestamp("2000-01-01T00")
APART = tuple(pd.Timedelta(hours=hours) for hours in (1, 24, 31 * 24, 366 * 24))
"""Times after :data:`SAMPLE` a template must name apart from it, so that no cycle's file
replaces another's: to the hour, and across days, months and years."""
_HOW = f"give {{init:FORMAT}} with strftime codes %Y %y %m %d %j %H %M, e.g. {EXAMPLE}"


def check_products_out(out: str | None, flag: str) -> dict[str, str | None]:
    """Refuse, before any run, a products output ``out`` (the parameter or flag ``flag``)
    with a field other than ``{init:FORMAT}``, a format a file name cannot hold, or one
    that gives two cycles one file. Returns the output for the path checks of
    :mod:`flows.inputs`: ``{flag: out}``, or a template's file for :data:`SAMPLE`."""
    if out is None or not _fields(out, flag):
        return {flag: out}
    first = file_of(out, SAMPLE)
    for later in (SAMPLE + gap for gap in APART):
        if file_of(out, later) == first:
            raise InputError(
                f"{flag} {out!r} gives {time_text(SAMPLE)} and {time_text(later)} one file, "
                f"{first}: each cycle would replace the last; name each initial time to the "
                f"hour, e.g. {EXAMPLE}"
            )
    return {f"{flag} {out}: its file": first}


def products_files(
    out: str, init_times: list[str] | None, forecast: str, init_from_filename: str | None = None
) -> dict[str, list[str] | None]:
    """Each file ``out`` names, with the initial times it holds: ``out`` itself with
    ``init_times`` (None: every one) when it has no field; one file per initial time of
    ``init_times`` (None: those the forecast ``forecast`` holds, files of one forecast each
    read with ``init_from_filename``) for a template."""
    if not _fields(out, "out"):
        return {out: init_times}
    if init_times is None:
        from pipeline.adapters import to_wxens_forecast
        from verification.run import open_forecast_any  # the report's imports: when asked

        with open_forecast_any(forecast, init_from_filename) as ds:
            held = to_wxens_forecast(ds)["init_time"].values
        init_times = [pd.Timestamp(t).isoformat() for t in held]
    files: dict[str, list[str] | None] = {}
    for init in init_times:
        files.setdefault(file_of(out, init), []).append(init)
    return files


def file_of(template: str, init: object) -> str:
    """The file ``template`` names for the initial time ``init``."""
    return template.format(init=pd.Timestamp(init).to_pydatetime())


def _fields(out: str, flag: str) -> list[str]:
    """The ``{init:FORMAT}`` fields of ``out``; InputError for another field or format."""
    try:
        parsed = list(Formatter().parse(out))
    except ValueError as err:  # a lone brace
        literal = "a literal brace is {{ or }}"
        raise InputError(f"{flag} {out!r}: {err}; {literal}, {_HOW}") from None
    fields = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        field = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
        if name != "init":
            raise InputError(f"{flag} {out!r}: unknown field {{{field}}}; {_HOW}")
        if conversion or not FORMAT.fullmatch(spec):
            raise InputError(
                f"{flag} {out!r}: {{{field}}} is not a file-name format: {_HOW}, among "
                "letters, digits, '-', '_' and '.'"
            )
        fields.append(field)
    return fields
