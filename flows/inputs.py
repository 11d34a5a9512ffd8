"""What the flows of :mod:`flows.pipelines` decide from their inputs before any work: the
checks that refuse a bad parameter early, whether a step's output is already there, and
which initial times a scheduled run forecasts and verifies (:mod:`pipeline.schedule` on
paths, as ISO strings a Prefect parameter can hold)."""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from generators.correction.baselines import BASELINES
from generators.correction.spec import CorrectionSpec
from pipeline import schedule
from pipeline.analysis_store import open_store
from pipeline.errors import InputError, StoreError, time_text
from pipeline.forecast_claims import Claims
from pipeline.forecast_store import check_extends, complete_init_times
from pipeline.schema import Period


def analysis_store_complete(path: str) -> bool:
    """Whether ``path`` holds a complete analysis store (an interrupted ingest is not)."""
    try:
        open_store(path)
    except StoreError:
        return False
    return True


def check_baseline(name: str | None, train: str | None, out: str | None) -> None:
    """Refuse, before any work, a baseline without its period or store, or an unknown one."""
    if name is None:
        if train is not None or out is not None:
            raise InputError(
                "baseline_train and baseline_store go with baseline_name (climatology or "
                "persistence): give it too, or leave them out"
            )
        return
    BASELINES[name]  # noqa: B018  (an unknown name raises, listing the known ones)
    if train is None or not out:
        raise InputError(
            f"baseline_name {name!r} needs baseline_train (START/END, the period it draws "
            "from) and baseline_store (the store to write)"
        )
    Period.parse(train, "training period")


def check_correction(
    weights: tuple[float | None, ...], out: str | None, names: str, store: str
) -> None:
    """Refuse, before any work, correction weights (bias, spread, rank; the parameters
    ``names``) out of range, or given without ``out`` (the parameter ``store``)."""
    if any(w is not None for w in weights):
        CorrectionSpec(weights[0] or 0.0, weights[1], weights[2])
        if not out:
            raise InputError(f"{names} need {store}, the store to write")


def check_flow_parameters(flow: str, parameters: Mapping[str, Any]) -> None:
    """Refuse, before any run, the values that ``flow`` (a name of
    :data:`flows.pipelines.FLOWS`) would refuse only once running (:data:`FLOW_CHECKS`):
    counts below 1, leads not positive, times that are not times, correction weights, a
    baseline without its period or store, an output file that could not be written.
    ``wxens serve`` checks a schedule file's parameters with it when it loads the file,
    not when a run fires; the flows check the same at their start."""
    for check in FLOW_CHECKS.get(flow, ()):
        check(parameters)


def _counts(*names: str, least: int = 1) -> Callable[[Mapping[str, Any]], None]:
    def check(parameters: Mapping[str, Any]) -> None:
        for name in names:
            value = parameters.get(name, least)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise InputError(
                    f"{name} must be a whole number of at least {least}, got {value!r}"
                )

    return check


def _leads_and_times(parameters: Mapping[str, Any]) -> None:
    leads = parameters.get("leads_hours") or ()
    if any(hours <= 0 for hours in leads):
        raise InputError(f"leads_hours must all be positive, got {list(leads)}")
    for time in parameters.get("init_times") or ():
        try:
            pd.Timestamp(time)
        except ValueError:
            raise InputError(f"init_times: {time!r} is not a time such as 2019-03-22T00") from None


def _run_correction(p: Mapping[str, Any]) -> None:
    weights = (p.get("bias_correction"), p.get("spread_weight"), p.get("rank_weight"))
    names = "bias_correction, spread_weight and rank_weight"
    check_correction(weights, p.get("corrected_store"), names, "corrected_store")


def _correction(p: Mapping[str, Any]) -> None:
    weights = (p.get("weight"), p.get("spread_weight"), p.get("rank_weight"))
    names = "weight, spread_weight and rank_weight"
    check_correction(weights, p.get("out"), names, "out")


def _run_baseline(p: Mapping[str, Any]) -> None:
    check_baseline(p.get("baseline_name"), p.get("baseline_train"), p.get("baseline_store"))


def _run_stores(p: Mapping[str, Any]) -> None:
    """The stores of an ensemble run, each its own: a baseline written into the forecast
    store would be verified as its own reference (skill 0), a correction into it would
    overwrite what later corrections learn from."""
    names = ("store", "forecast_store", "corrected_store")  # one left out (None) passes
    stores = {name: p.get(name) for name in names}
    if p.get("baseline_name") is not None:
        stores["baseline_store"] = p.get("baseline_store")
    check_distinct_outputs(stores, "store")


def _sampler(p: Mapping[str, Any]) -> None:
    if p.get("sampler") is not None:
        import generators.models  # noqa: F401  (registers the generators)
        from generators.base import GENERATORS
        from generators.config import parse_sampler

        sampler = parse_sampler(p["sampler"])
        kind = _trained_kind(p.get("train_config"), p.get("train_overrides") or ())
        # no config file or kind: the training reports it, and the forecast the sampler
        if isinstance(kind, str) and kind in GENERATORS:
            GENERATORS[kind].check_sampler(sampler)


def _trained_kind(config: str | None, overrides: Any) -> object:
    """The ``model.kind`` a run's training config (with its overrides) will train, or None
    where there is no such file (the training reports that)."""
    if not config or not Path(config).is_file():
        return None
    from generators.config import apply_overrides, read_mapping

    model = apply_overrides(read_mapping(config), list(overrides)).get("model")
    return model.get("kind") if isinstance(model, dict) else None


def _member_choice(p: Mapping[str, Any]) -> None:
    from verification.run import MEMBER_CHOICES

    if p.get("members", "all") not in MEMBER_CHOICES:
        raise InputError(f"members={p['members']!r}: expected one of {', '.join(MEMBER_CHOICES)}")


def _baseline(p: Mapping[str, Any]) -> None:
    check_baseline(p.get("name"), p.get("train"), p.get("out"))


def _stores(*names: str) -> Callable[[Mapping[str, Any]], None]:
    def check(parameters: Mapping[str, Any]) -> None:
        check_distinct_outputs({name: parameters.get(name) for name in names}, "store")

    return check


def _outputs(p: Mapping[str, Any]) -> None:
    check_output_file(p.get("scores"), "scores", "scores.nc")
    check_output_file(p.get("report"), "report", "report.html")
    outputs = {"scores": p.get("scores"), "report": p.get("report")}
    check_distinct_outputs(outputs)
    reads = ("forecast", "truth", "reference", "store", "forecast_store", "corrected_store")
    check_outputs_spare_inputs(outputs, {name: p.get(name) for name in reads})


_SEED = _counts("seed", least=0)
"""numpy seeds only with whole numbers >= 0 (a negative one failed the run as it fired)."""

FLOW_CHECKS: dict[str, tuple[Callable[[Mapping[str, Any]], None], ...]] = {
    "forecast": (_counts("members", "batch_members"), _SEED, _leads_and_times, _sampler),
    "bias_correct": (_correction, _stores("forecast", "truth", "out")),
    "baseline": (_baseline, _SEED, _stores("store", "forecast", "out")),
    "verify": (_member_choice, _outputs),
    "ensemble_run": (
        _counts("members", "latest", "cycle_hours"),
        _SEED,
        _leads_and_times,
        _sampler,
        _run_correction,
        _run_baseline,
        _run_stores,
        _outputs,
    ),
}
"""The checks of :func:`check_flow_parameters`, by flow name."""


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

    asked = dict(forecast=forecast, truth=truth, init_times=init_times, reference=reference)
    asked |= dict(members=members, init_from_filename=init_from_filename)
    return [scores, report], inputs_fingerprint(asked, reads=("forecast", "truth", "reference"))
