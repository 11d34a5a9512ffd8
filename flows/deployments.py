"""Scheduled runs: a schedule file of deployments, served on a Prefect server.

A schedule file (YAML) lists deployments — a flow of :data:`flows.pipelines.FLOWS`, a
cron schedule and the flow's parameters::

    deployments:
      - name: uk-ensemble
        flow: ensemble_run
        cron: "0 */6 * * *"          # every 6 hours, on the hour
        timezone: UTC
        parameters:
          store: data/uk.zarr
          checkpoint: runs/uk/model.pt
          forecast_store: forecasts/uk.zarr
      - name: uk-ingest
        flow: ingest
        cron: "20 * * * *"
        parameters: {sources: ["incoming/*.grib"], store: data/uk.zarr}

:func:`flows.serving.serve` registers them on the server at ``PREFECT_API_URL`` (``prefect
server start``) and runs their flow runs — scheduled or triggered from the UI or the client —
in subprocesses until interrupted. Relative paths in parameters are relative to the
directory ``wxens serve`` runs in.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# imported from here by flows.steps (on import of a served run's entrypoint) and by users
from flows.serving import prepare_flow_process as prepare_flow_process
from flows.serving import quiet_flow_runs as quiet_flow_runs
from flows.serving import require_server as require_server
from flows.serving import serve as serve
from flows.serving import to_deployments as to_deployments
from generators.correction.tuned import CorrectionNames
from pipeline.errors import InputError
from pipeline.redact import redact

log = logging.getLogger(__name__)


BANNED_NAME = frozenset("/%&><")
"""Characters Prefect refuses in a deployment name (when registering, with a traceback)."""
DEFAULT_CRON = "0 */6 * * *"
"""Every 6 hours on the hour (00, 06, 12, 18): the cycle of a global forecast centre."""
RUN_PARAMETER_NAMES = CorrectionNames(
    checkpoint="the parameter checkpoint", bias_weight="the parameter bias_correction: W"
)
"""What ``ensemble_run``'s hints of a correction name where a schedule file or a call in
Python gives its parameters (a served run has no flags; ``wxens run`` names its own,
:data:`RUN_NAMES`)."""
RUN_NAMES: ContextVar[CorrectionNames] = ContextVar("RUN_NAMES", default=RUN_PARAMETER_NAMES)
"""What ``ensemble_run`` names in its hints of a correction: :data:`RUN_PARAMETER_NAMES`
(a served run, a notebook's call), or the flags alone, which ``wxens run`` sets around its
call (its user read "the parameter bias_correction: W", which it has not). A context
variable reaches the flow's body, its subflows and tasks (Prefect copies the context into
its task threads), and no other call in the process."""
BIAS_CORRECT_PARAMETER_NAMES = CorrectionNames(
    checkpoint="the parameter checkpoint", bias_weight="the parameter weight: W"
)
"""What the ``bias_correct`` flow's hints of a correction name: its parameters (no command
runs that flow; ``wxens bias-correct`` is the command's own)."""


@dataclass(frozen=True)
class DeploymentSpec:
    """One scheduled deployment: ``flow`` (a key of FLOWS) run on ``cron`` in ``timezone``."""

    name: str
    flow: str
    cron: str = DEFAULT_CRON
    timezone: str = "UTC"
    parameters: dict[str, Any] = field(default_factory=dict)
    description: str = ""


ANALYSIS_STORES = {
    "ensemble_run": "store",
    "train": "store",
    "forecast": "store",
    "baseline": "store",
    "bias_correct": "truth",
    "verify": "truth",
}
"""The parameter naming the analysis store each flow reads (``ingest`` makes its own)."""


def load_schedule(path: str | Path) -> tuple[DeploymentSpec, ...]:
    """The deployments of a schedule file, each checked: known flow, valid cron, valid
    parameters for that flow. Raises InputError naming the file and the entry; warns of a
    deployment whose analysis store is not there yet (:func:`absent_store`)."""
    path = Path(path)
    entries = schedule_entries(path, read_yaml(path))
    specs = tuple(check_entry(f"{path}: deployment {i + 1}", e) for i, e in enumerate(entries))
    check_names_differ(path, [spec.name for spec in specs])
    for i, spec in enumerate(specs):
        if said := absent_store(spec):
            log.warning("%s: deployment %d: %s", path, i + 1, said)
    return specs


def absent_store(spec: DeploymentSpec, relative: bool = True) -> str | None:
    """What to say of a deployment whose analysis store (:data:`ANALYSIS_STORES`) is not
    there: its runs fail until it is. Not refused, since a feed's ingest may make it before
    the first run. None where it is there, where the run ingests it first (an ensemble run
    with ``sources``), for a URL store (not looked for: no credentials are read here) and,
    unless ``relative``, for a relative path (its run's directory is not known here)."""
    name = ANALYSIS_STORES.get(spec.flow, "")
    path = spec.parameters.get(name)
    if not isinstance(path, str) or "://" in path or spec.parameters.get("sources"):
        return None
    if Path(path).exists() or not (relative or Path(path).is_absolute()):
        return None
    return (
        f"{name} {path} does not exist yet: each run fails until it does (a feed may make it "
        f"before the first run); make it with `wxens ingest SOURCES --store {path}`"
    )


def read_yaml(path: Path) -> Any:
    """``path``'s YAML, safely loaded (as ``prefect deploy`` loads a prefect.yaml)."""
    try:
        return yaml.safe_load(path.read_text())
    except OSError as err:
        raise InputError(f"cannot read {path}: {err}") from err
    except yaml.YAMLError as err:
        raise InputError(f"{path} is not valid YAML: {err}") from err


def schedule_entries(path: Path, document: Any) -> list[Any]:
    """The entries of a schedule file's ``deployments:`` list, unchecked."""
    entries = document.get("deployments") if isinstance(document, dict) else None
    if not entries or not isinstance(entries, list):
        raise InputError(f"{path}: expected a top-level 'deployments:' list of deployments")
    return entries


def check_names_differ(path: Path, names: list[str]) -> None:
    """InputError where two deployments of ``path`` share a name."""
    if len(set(names)) != len(names):
        raise InputError(f"{path}: deployment names repeat: {names}")


def check_entry(where: str, entry: Any) -> DeploymentSpec:
    """The deployment of a schedule file's entry, after every check ``wxens serve`` makes
    as it loads the file (keys, name, flow, cron, parameters); InputError naming ``where``
    (the file and the entry) otherwise. Registers and starts nothing."""
    from prefect.client.schemas.schedules import CronSchedule
    from pydantic import ValidationError

    from flows.pipelines import FLOWS

    known = {f.name for f in DeploymentSpec.__dataclass_fields__.values()}
    if not isinstance(entry, dict):
        raise InputError(f"{where}: expected a mapping with name, flow, cron, parameters")
    if unknown := sorted(set(entry) - known):
        raise InputError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(known)}")
    try:
        spec = DeploymentSpec(**entry)
    except TypeError as err:
        raise InputError(f"{where}: {err}") from err
    if not isinstance(spec.name, str) or not spec.name or set(spec.name) & BANNED_NAME:
        raise InputError(
            f"{where}: name {spec.name!r}: give a non-empty name without any of "
            f"{''.join(sorted(BANNED_NAME))}, e.g. uk-ensemble"
        )
    if not isinstance(spec.parameters, dict):
        raise InputError(
            f"{where}: parameters must be a mapping of the flow's parameters, e.g. "
            f"{{store: stores/uk.zarr}}; got {spec.parameters!r}"
        )
    if spec.flow not in FLOWS:
        raise InputError(f"{where}: unknown flow {spec.flow!r}; choose from {sorted(FLOWS)}")
    try:
        CronSchedule(cron=spec.cron, timezone=spec.timezone)
    except ValidationError as err:
        raise InputError(
            f"{where}: cron {spec.cron!r} in timezone {spec.timezone!r} is not valid "
            f"(e.g. '0 */6 * * *' in 'UTC'): {err.errors()[0]['msg']}"
        ) from err
    _check_cron_fields(where, spec.cron)
    _check_parameters(where, spec)
    _warn_uncorrected(where, spec)
    return spec


def _check_cron_fields(where: str, cron: str) -> None:
    """InputError unless ``cron`` has the five fields of a crontab (or is an ``@`` alias):
    croniter takes a sixth as seconds, so '0 */6 * * * *' would start a run every second of
    minute 0, and a seventh as years."""
    fields = cron.split()
    if not cron.startswith("@") and len(fields) != 5:
        raise InputError(
            f"{where}: cron {cron!r} has {len(fields)} fields; give the five of a crontab, "
            "minute hour day-of-month month day-of-week (e.g. '0 */6 * * *'): a sixth is "
            "read as seconds and would start a run every second it matches"
        )


def _check_parameters(where: str, spec: DeploymentSpec) -> None:
    import inspect

    from prefect.exceptions import ParameterTypeError

    from flows.parameter_checks import check_flow_parameters
    from flows.pipelines import FLOWS

    flow = FLOWS[spec.flow]
    signature = inspect.signature(flow.fn)
    if unknown := sorted(set(spec.parameters) - set(signature.parameters)):
        raise InputError(
            f"{where}: flow {spec.flow!r} has no parameter(s) {unknown}; "
            f"its parameters are {list(signature.parameters)}"
        )
    missing = [
        name
        for name, p in signature.parameters.items()
        if p.default is inspect.Parameter.empty and name not in spec.parameters
    ]
    if missing:
        raise InputError(f"{where}: flow {spec.flow!r} needs parameter(s) {missing}")
    for name, value in spec.parameters.items():
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str) and redact(text) != text:
                raise InputError(
                    f"{where}: parameter {name!r} holds a secret ({redact(text)}); Prefect "
                    "stores flow parameters in its database, so give credentials through the "
                    "storage backend's environment variables or credential files instead"
                )
    try:
        flow.validate_parameters(spec.parameters)
    except ParameterTypeError as err:
        raise InputError(
            f"{where}: parameters of flow {spec.flow!r} do not validate: {err}"
        ) from err
    try:
        check_flow_parameters(spec.flow, spec.parameters)
        _check_sources(spec.parameters.get("sources") or [])
    except InputError as err:
        raise InputError(f"{where}: {err}") from None


def _warn_uncorrected(where: str, spec: DeploymentSpec) -> None:
    """Warn, as the file loads, of an ensemble run whose ``corrected_store`` no run will
    write while its checkpoint stays as it is: no weight given, and the checkpoint (there
    already, not trained by the run) never tuned. Each run delivers the raw forecast and
    says so in its own log, hours later; `wxens tune` meanwhile makes the next run correct."""
    from generators.correction.tuned import no_correction_reason, resolve_correction

    p = spec.parameters
    weights = [p.get(k) for k in ("bias_correction", "spread_weight", "rank_weight")]
    checkpoint = p.get("checkpoint")
    if spec.flow != "ensemble_run" or not p.get("corrected_store") or p.get("train_config"):
        return
    if any(w is not None for w in weights) or not Path(checkpoint).exists():
        return
    if resolve_correction(checkpoint, names=RUN_PARAMETER_NAMES).applies:
        return
    log.warning(
        "%s: %s; until then each run delivers %s uncorrected and does not write %s",
        where,
        no_correction_reason(checkpoint, store=p.get("store"), names=RUN_PARAMETER_NAMES),
        p["forecast_store"],
        p["corrected_store"],
    )


def _check_sources(sources: list[str]) -> None:
    """Refuse a source no kind reads (a feed's ``incoming/*``, without the files'
    extension): it failed every run as it fired. Only the text is checked: a feed's glob
    matches no file until its first file arrives."""
    from pipeline.sources import source_kind

    for source in sources:
        try:
            source_kind(source)
        except InputError as err:
            raise InputError(f"sources: {err}") from None
