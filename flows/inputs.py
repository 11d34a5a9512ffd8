"""What the flows (:mod:`flows.steps`, :mod:`flows.pipelines`) decide from their inputs before
any work: the checks that refuse an output path early (a flow's parameters as a whole:
:mod:`flows.parameter_checks`), whether a step's output is already there, and which initial
times a scheduled run forecasts and verifies (:mod:`pipeline.schedule` on paths, as ISO
strings a Prefect parameter can hold)."""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

from pipeline import schedule
from pipeline.analysis_store import open_store
from pipeline.errors import InputError, StoreError, time_text
from pipeline.forecast_claims import Claims
from pipeline.forecast_store import check_extends, complete_init_times
from pipeline.store_export import writer_for


def analysis_store_complete(path: str) -> bool:
    """Whether ``path`` holds a complete analysis store (an interrupted ingest is not)."""
    try:
        open_store(path)
    except StoreError:
        return False
    return True


def check_output_file(path: str | None, flag: str, example: str) -> None:
    """Refuse, before any work, a path given for one output file (scores, a report) that
    could not be written at the end: an existing directory, one below a regular file, or
    one in a directory that cannot be written.
    ``flag`` names the option in the message, ``example`` is a file name to suggest
    (``scores.nc``); None (an optional output left out) passes."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise InputError(
            f"{flag} {path} is a directory; give a file path such as {target / example}"
        )
    parent = _nearest_existing(target.parents)  # it must be a directory
    if parent is None:
        return
    if not parent.is_dir():
        raise InputError(
            f"{flag} {path}: {parent} is a file, not a directory; give a path in a "
            "directory (one that is missing is created)"
        )
    if not os.access(parent, os.W_OK):  # found now, not after the forecasts
        raise InputError(
            f"{flag} {path}: {parent} cannot be written (a read-only file system, "
            "or no permission); give a path in a directory you can write"
        )


def check_output_dir(path: str, flag: str, holds: str) -> None:
    """Refuse, before any work, a path given for an output directory (a training run's,
    which ``holds`` says what it will hold) that is a file or lies below one."""
    target = Path(path)
    at = _nearest_existing((target, *target.parents))  # it must be a directory
    if at is not None and not at.is_dir():
        raise InputError(
            f"{flag} {path}: {at} is a file, not a directory; give a directory (new or not) "
            f"for {holds}"
        )


def _nearest_existing(paths: Iterable[Path]) -> Path | None:
    """The first of ``paths`` (a path and its parents, nearest first) that exists."""
    return next((p for p in paths if p.exists()), None)


def check_outputs_spare_inputs(
    outputs: Mapping[str, str | None], inputs: Mapping[str, str | None]
) -> None:
    """Refuse an output file (flag -> path) that is one of the inputs (flag -> path or
    glob) a command reads, or lies inside one (a store's folder): ``wxens verify fc.nc --out
    fc.nc`` replaced the forecast by its scores, and ``--out fc.zarr/s.nc`` put them where
    the store's next replacement deletes them."""
    read: dict[Path, str] = {}
    for flag, given in inputs.items():
        if given:
            matches = glob.glob(str(given)) if glob.has_magic(str(given)) else [str(given)]
            read |= {Path(path).resolve(): flag for path in matches}
    for flag, path in outputs.items():
        target = Path(path).resolve() if path else None
        if target in read:
            raise InputError(
                f"{flag} {path} is what {read[target]} reads: writing it would replace it; "
                "give the output another path"
            )
        inside = next((p for p in read if target is not None and p in target.parents), None)
        if inside is not None:
            raise InputError(
                f"{flag} {path} lies inside {inside}, which {read[inside]} reads: it would "
                "be written among the store's files; give the output a path outside it"
            )


def check_distinct_outputs(outputs: dict[str, str | None], what: str = "file") -> None:
    """Refuse two options (flag -> path) naming one ``what`` (a file, a store): the last
    written would replace the other, or a store would be read as what it is not."""
    seen: dict[Path, str] = {}
    for flag, path in outputs.items():
        if not path:
            continue
        target = Path(path).resolve()
        if target in seen:
            raise InputError(
                f"{seen[target]} and {flag} both name {path}; give each its own {what}"
            )
        seen[target] = flag


def latest_init_times(store: str, checkpoint: str, latest: int, cycle_hours: int) -> list[str]:
    """:func:`pipeline.schedule.latest_init_times` of ``store`` with the checkpoint's
    history window, as ISO strings."""
    from generators.checkpoint import load_checkpoint

    analysis = open_store(store)  # a missing store is the first thing to report
    loaded = load_checkpoint(checkpoint)
    window = -min(loaded.spec.history) * loaded.native_step
    times = schedule.latest_init_times(
        analysis, history=window, latest=latest, cycle_hours=cycle_hours
    )
    return [t.isoformat() for t in times]


def skipped_cycles(
    store: str, checkpoint: str, forecast_store: str, chosen: list[str], cycle_hours: int
) -> list[str]:
    """:func:`pipeline.schedule.skipped_cycles` with the checkpoint's history window, as
    ISO strings: the cycles that a run forecasting ``chosen`` leaves out for good."""
    from generators.checkpoint import load_checkpoint

    loaded = load_checkpoint(checkpoint)
    window = -min(loaded.spec.history) * loaded.native_step
    times = schedule.skipped_cycles(
        store, forecast_store, pd.DatetimeIndex(chosen), history=window, cycle_hours=cycle_hours
    )
    return [t.isoformat() for t in times]


def skipped_cycles_warning(
    forecast_store: str, store: str, skipped: list[str], latest: int, cycle_hours: int
) -> str:
    """The warning of a run whose ``latest`` cycles leave out ``skipped`` (sorted, from
    :func:`skipped_cycles`), with the ``wxens run --init`` value that forecasts them."""
    first, last = time_text(skipped[0]), time_text(skipped[-1])
    return (
        f"{forecast_store}: {len(skipped)} cycle(s) after its last forecast, {first} to "
        f"{last}, have their analyses in {store} but are not among the latest={latest} "
        f"forecast now; forecast them with init_times (wxens run --init "
        f"{first}/{last}/{cycle_hours}h) or a larger latest"
    )


def warn_skipped_cycles(
    store: str,
    checkpoint: str,
    forecast_store: str,
    chosen: list[str],
    latest: int,
    cycle_hours: int,
) -> None:
    """Warn in the flow run's log of the cycles a run of the ``latest`` cycles ``chosen``
    leaves out for good (:func:`skipped_cycles`, :func:`skipped_cycles_warning`)."""
    from prefect import get_run_logger  # Prefect: imported only by a flow

    skipped = skipped_cycles(store, checkpoint, forecast_store, chosen, cycle_hours)
    if skipped:
        get_run_logger().warning(
            skipped_cycles_warning(forecast_store, store, skipped, latest, cycle_hours)
        )


def incomplete_init_times(
    out: str, asked: pd.DatetimeIndex, members: int, leads_hours: list[float]
) -> pd.DatetimeIndex:
    """The initial times of ``asked`` the forecast flow draws: those the forecast store
    ``out`` does not hold completely. Those it holds are skipped, logged to the run, once
    what is there is found to answer this request (:func:`check_extends`: its members and
    leads)."""
    from prefect import get_run_logger  # Prefect: imported only by a flow

    from flows.tasks import RUN_REDRAW

    pending = asked.difference(complete_init_times(out))
    if len(pending) < len(asked):
        check_extends(out, None, members, leads_hours)
        get_run_logger().info(
            "%s: %d of %d initial time(s) already complete, skipped (to draw them again: %s)",
            out,
            len(asked) - len(pending),
            len(asked),
            RUN_REDRAW,
        )
    return pending


def warn_trained_on(
    checkpoint: str, asked: pd.DatetimeIndex, leads: list[float], calibrate: bool = True
) -> None:
    """The forecast flow's one warning, logged to its run, when ``asked`` (all its initial
    times) fall in the training period of ``checkpoint`` or, ``calibrate``d, its spread
    calibration's (:func:`generators.in_sample.warn_if_trained_on`, what ``wxens forecast``
    says once): its tasks, one per batch, are told not to warn each about its own."""
    from flows.runtime import library_logs_to_run  # Prefect: imported only by a flow
    from generators.in_sample import warn_if_trained_on  # torch: only by a forecast

    with library_logs_to_run():
        warn_if_trained_on(checkpoint, asked, leads, calibrated=calibrate)


def claimed_init_times(claims: Claims, batch: pd.DatetimeIndex) -> list[str] | None:
    """The initial times of ``batch`` the forecast flow run holding ``claims`` draws now,
    claimed for it before its task runs (:func:`generators.rollout_store.to_draw`, logged to
    the run): none if another run wrote them meanwhile; None while another live run claims
    them, until the batch is asked again after this run's others."""
    from flows.runtime import library_logs_to_run  # Prefect: imported only by a flow
    from generators.rollout_store import to_draw  # torch: imported only by a forecast

    with library_logs_to_run():
        left = to_draw(claims, batch)
    return None if left is None else [t.isoformat() for t in left]


def products_current(
    forecast: str,
    out: str,
    products: Mapping[str, Any],
    init_times: list[str] | None,
    members: str = "all",
    init_from_filename: str | None = None,
) -> bool:
    """Whether ``out`` holds the products flow's products ``products`` of ``forecast`` at
    ``init_times`` and of its ``members``, read with ``init_from_filename`` (another
    pattern is another request), as its root attribute records them
    (:func:`verification.product_output.products_record`). Existing is not enough: another
    run (other initial times) or a hand-run ``wxens products --overwrite`` (other products)
    may have replaced the file since, and a cached rerun would then leave it as its own."""
    from verification.product_output import (  # the report's imports: only a products run
        PRODUCTS_ATTR,
        ProductRequest,
        products_record,
    )

    request = ProductRequest.of(dict(products))
    want = products_record(forecast, request, init_times, members, init_from_filename)
    try:
        with xr.open_dataset(out, engine=writer_for(out).engine) as ds:
            held = ds.attrs.get(PRODUCTS_ATTR)
    except (OSError, ValueError):  # absent, or not a dataset: written again (or refused)
        return False
    return (json.loads(held) if isinstance(held, str) else held) == want


def truth_arrived(forecast: str, store: str) -> list[str]:
    """:func:`pipeline.schedule.truth_arrived`, as ISO strings."""
    return [t.isoformat() for t in schedule.truth_arrived(forecast, store)]


def verify_record(
    forecast: str,
    truth: str,
    scores: str,
    report: str | None,
    init_times: list[str] | None,
    reference: str | None = None,
    members: str = "all",
    init_from_filename: str | None = None,
) -> tuple[list[str | None], str]:
    """What the ``verify`` flow writes and the fingerprint of what it reads, recorded with
    them (:func:`flows.runtime.record_outputs`): while both are current, it is skipped."""
    from flows.runtime import inputs_fingerprint  # Prefect: imported only by a flow

    # the times as times: a range (--init A/B/STEP) and a list spelled otherwise are alike
    times = None if init_times is None else [pd.Timestamp(t).isoformat() for t in init_times]
    asked = dict(forecast=forecast, truth=truth, init_times=times, reference=reference)
    asked |= dict(members=members, init_from_filename=init_from_filename)
    return [scores, report], inputs_fingerprint(asked, reads=("forecast", "truth", "reference"))
