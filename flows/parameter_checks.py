"""The checks that refuse, before any work, a flow parameter the flow of
:mod:`flows.pipelines` would refuse only once running (:func:`check_flow_parameters`): the
flows run them at their start, ``wxens serve`` when it loads a schedule file. Apart from
:mod:`flows.inputs`, whose output-path checks they use, as one table of checks per flow."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from flows.inputs import check_distinct_outputs, check_output_file, check_outputs_spare_inputs
from flows.products_files import check_products_out
from generators.correction.baselines import BASELINES
from generators.correction.spec import CorrectionSpec
from pipeline.errors import InputError
from pipeline.schema import Period


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
    baseline without its period or store, an output file that could not be written, a
    product spec ``wxens products`` would refuse, a start-date pattern without a date.
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
    cycle = parameters.get("init_cycle_hours")
    if cycle is not None and (
        isinstance(cycle, bool) or not isinstance(cycle, int | float) or cycle <= 0
    ):
        raise InputError(f"init_cycle_hours must be a positive number of hours, got {cycle!r}")
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
    from pipeline.members import check_members

    check_members(p.get("members", "all"))


def _start_pattern(p: Mapping[str, Any]) -> None:
    """A forecast of files, one per start date read from each name: a pattern ``wxens
    verify --init-from-filename`` would refuse as it read the first file, refused first."""
    from pipeline.start_dates import check_start_pattern

    if p.get("init_from_filename") is not None:
        check_start_pattern(p["init_from_filename"])


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


def _products(p: Mapping[str, Any]) -> None:
    from verification.product_output import ProductRequest

    ProductRequest.of(p.get("products"), "products").parsed()
    out = check_products_out(p.get("out"), "out")  # a template: a file per initial time
    check_outputs_spare_inputs(out, {"forecast": p.get("forecast")})


def _run_products(p: Mapping[str, Any]) -> None:
    """Products asked for with their output, parsed as ``wxens products`` parses its flags:
    a bad event (``t2m<0 degrees``) refused when a schedule file loads, not as a run fires."""
    asked, out = p.get("products"), p.get("products_out")
    if (asked is None) != (out is None):
        raise InputError(
            "products and products_out go together: the products asked for (e.g. {mean: "
            "true, probability: ['t2m<0degC']}) and the file or store to write them to"
        )
    if asked is None:
        return
    from verification.product_output import ProductRequest  # verification.run: not at import

    ProductRequest.of(asked, "products").parsed()
    files = check_products_out(out, "products_out")  # a template: a file per initial time
    check_distinct_outputs({**files, "scores": p.get("scores"), "report": p.get("report")})
    reads = ("store", "forecast_store", "corrected_store", "baseline_store")
    check_outputs_spare_inputs(files, {name: p.get(name) for name in reads})


_SEED = _counts("seed", least=0)
"""numpy seeds only with whole numbers >= 0 (a negative one failed the run as it fired)."""

FLOW_CHECKS: dict[str, tuple[Callable[[Mapping[str, Any]], None], ...]] = {
    "forecast": (_counts("members", "batch_members"), _SEED, _leads_and_times, _sampler),
    "bias_correct": (_correction, _stores("forecast", "truth", "out")),
    "baseline": (_baseline, _SEED, _stores("store", "forecast", "out")),
    "verify": (_member_choice, _start_pattern, _outputs),
    "products": (_member_choice, _start_pattern, _products, _leads_and_times),
    "ensemble_run": (
        _counts("members", "latest", "cycle_hours"),
        _SEED,
        _leads_and_times,
        _sampler,
        _run_correction,
        _run_baseline,
        _run_stores,
        _outputs,
        _run_products,
    ),
}
"""The checks of :func:`check_flow_parameters`, by flow name."""
