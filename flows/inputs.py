"""What the flows of :mod:`flows.pipelines` decide from their inputs before any work: the
checks that refuse a bad parameter early, whether a step's output is already there, and
which initial times a scheduled run forecasts and verifies (:mod:`pipeline.schedule` on
paths, as ISO strings a Prefect parameter can hold)."""

from __future__ import annotations

from pathlib import Path

from generators.correction.baselines import BASELINES
from pipeline import schedule
from pipeline.analysis_store import open_store
from pipeline.errors import InputError, StoreError
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


def check_output_file(path: str | None, flag: str, example: str) -> None:
    """Refuse, before any work, a path given for one output file (scores, a report) that
    could not be written at the end: an existing directory, or one below a regular file.
    ``flag`` names the option in the message, ``example`` is a file name to suggest
    (``scores.nc``); None (an optional output left out) passes."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise InputError(
            f"{flag} {path} is a directory; give a file path such as {target / example}"
        )
    for parent in target.parents:  # the nearest one that exists must be a directory
        if parent.exists():
            if not parent.is_dir():
                raise InputError(
                    f"{flag} {path}: {parent} is a file, not a directory; give a path in a "
                    "directory (one that is missing is created)"
                )
            return


def check_distinct_outputs(outputs: dict[str, str | None]) -> None:
    """Refuse two output options (flag -> path) naming one file: the last written would
    replace the other."""
    seen: dict[Path, str] = {}
    for flag, path in outputs.items():
        if path is None:
            continue
        target = Path(path).resolve()
        if target in seen:
            raise InputError(f"{seen[target]} and {flag} both name {path}; give each its own file")
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


def truth_arrived(forecast: str, store: str) -> list[str]:
    """:func:`pipeline.schedule.truth_arrived`, as ISO strings."""
    return [t.isoformat() for t in schedule.truth_arrived(forecast, store)]
