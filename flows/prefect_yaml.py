"""A prefect.yaml's wxens deployments checked as ``wxens serve`` checks a schedule file's
(``wxens check``), before ``prefect deploy`` registers them: a bad parameter was refused
only when a worker started a run, hours later.

The file is read as ``prefect deploy`` reads it (``prefect.cli.deploy``): YAML safely
loaded (anchors of ``definitions:`` resolve, ``!`` tags are refused), validated by Prefect's
own model, each deployment's ``{{ $VAR }}`` filled in from the environment. A placeholder
only ``prefect deploy`` can fill (a server's ``prefect.variables``, ``prefect.blocks``, a
build step's output) is refused, naming it: wxens cannot check a value it cannot see.
Each deployment whose entrypoint is a flow of :data:`flows.pipelines.FLOWS` maps onto the
entries of a schedule file (:mod:`flows.deployments`), one per schedule, with that
schedule's parameters over the deployment's; others are skipped. Its relative paths are
checked where the deployment's pull steps leave each run (:mod:`flows.pull_steps`).
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flows.deployments import (
    DeploymentSpec,
    absent_store,
    check_entry,
    check_names_differ,
    read_yaml,
    schedule_entries,
)
from flows.pull_steps import RunDirectory, reading_paths_in, run_directory
from pipeline.errors import InputError

CHECKED_KEYS = ("name", "entrypoint", "schedule", "schedules", "parameters")
"""The keys of a prefect.yaml deployment that wxens checks: their values must be known."""


@dataclass(frozen=True)
class PrefectDeployment:
    """One deployment of a prefect.yaml: ``flow``, the wxens flow of its entrypoint, run on
    ``schedules`` (their words), as the schedule-file ``entries``; or ``skipped``, why not
    (its entrypoint's flow is not a wxens flow)."""

    where: str
    name: str
    flow: str = ""
    schedules: tuple[str, ...] = ()
    entries: tuple[dict[str, Any], ...] = ()
    skipped: str = ""

    def check(self) -> tuple[DeploymentSpec, ...]:
        """Every check of ``wxens serve`` on each entry; InputError naming the deployment."""
        return tuple(check_entry(self.where, entry) for entry in self.entries)


def is_prefect_yaml(document: Any) -> bool:
    """Whether ``document`` is a prefect.yaml's (a deployment has an ``entrypoint``), not
    a schedule file's (each has a ``flow``)."""
    entries = document.get("deployments") if isinstance(document, dict) else None
    return isinstance(entries, list) and any(
        isinstance(entry, dict) and "entrypoint" in entry for entry in entries
    )


def prefect_yaml_deployments(path: Path) -> list[PrefectDeployment]:
    """The deployments of the prefect.yaml ``path``, mapped; InputError at the first that
    cannot be."""
    return [map_deployment(where, config) for where, config in deployment_configs(path)]


def deployment_configs(path: Path, document: Any = None) -> list[tuple[str, dict[str, Any]]]:
    """(where, config) of each deployment of the prefect.yaml ``path``: ``where`` names the
    file and the deployment, ``config`` its mapping with the environment's values filled
    in as ``prefect deploy`` fills them. InputError where Prefect's model refuses the file."""
    from prefect.cli.deploy._models import PrefectYamlModel
    from prefect.utilities.templating import apply_values
    from pydantic import ValidationError

    document = read_yaml(path) if document is None else document
    try:
        PrefectYamlModel.model_validate(document)
    except ValidationError as err:
        first = err.errors()[0]
        at = ".".join(str(part) for part in first["loc"])
        raise InputError(f"{path}: {at}: {first['msg']} (prefect deploy refuses it)") from None
    configs = []
    for i, config in enumerate(document.get("deployments") or []):
        where = f"{path}: deployment {config.get('name') or i + 1!r}"
        configs.append((where, apply_values(config, dict(os.environ), remove_notset=False)))
    return configs


def map_deployment(where: str, config: dict[str, Any]) -> PrefectDeployment:
    """The deployment of a prefect.yaml's ``config``, its entrypoint loaded as ``prefect
    deploy`` loads it (from the directory deployed from)."""
    from prefect.cli.deploy._models import DeploymentConfig
    from prefect.flows import load_flow_from_entrypoint
    from prefect.utilities.templating import find_placeholders
    from pydantic import ValidationError

    from flows.pipelines import FLOWS

    for key in CHECKED_KEYS:
        if placeholders := sorted(p.full_match for p in find_placeholders(config.get(key))):
            raise InputError(
                f"{where}: {key} holds {', '.join(placeholders)}, which only prefect deploy "
                "fills in (a server's variable or block, a build step's output; an unset "
                "environment variable): give the value, or set the variable, to check it"
            )
    try:
        deployment = DeploymentConfig.model_validate(config)
    except ValidationError as err:  # a value of the environment Prefect's model refuses
        raise InputError(f"{where}: {err.errors()[0]['msg']} (prefect deploy refuses it)") from None
    try:
        flow = load_flow_from_entrypoint(deployment.entrypoint or "", use_placeholder_flow=False)
    except Exception as err:  # noqa: BLE001  (the entrypoint runs the file's own code)
        entrypoint = deployment.entrypoint or ""
        said = f"{where}: entrypoint {entrypoint!r} does not load a flow ({err}); "
        raise InputError(said + _loading_entrypoint(entrypoint)) from None
    ours = FLOWS.get(flow.name)
    if ours is None or _source(ours.fn) != _source(flow.fn):
        why = f"flow {flow.name!r} of {deployment.entrypoint} is not a wxens flow"
        return PrefectDeployment(where, str(deployment.name), flow.name, skipped=why)
    schedules = deployment.schedules or [deployment.schedule] * bool(deployment.schedule)
    entries, said = [], []
    for item in schedules or [None]:
        schedule = getattr(item, "schedule", item)  # a DeploymentScheduleCreate wraps one
        cron, timezone = getattr(schedule, "cron", None), getattr(schedule, "timezone", None)
        entry = {"name": deployment.name, "flow": flow.name}
        entry["parameters"] = {**deployment.parameters, **(getattr(item, "parameters", {}))}
        if cron is not None:
            entry.update(cron=cron, timezone=timezone or "UTC")
        entries.append(entry)
        said.append(_schedule_words(schedule, entry))
    return PrefectDeployment(where, str(deployment.name), flow.name, tuple(said), tuple(entries))


def _loading_entrypoint(entrypoint: str) -> str:
    """What to give instead of ``entrypoint``: a wxens file named relative to a directory
    deployed from that is not wxens's (a data directory) is named where wxens is."""
    from flows.pipelines import FLOWS

    file, _, name = entrypoint.rpartition(":")
    root = _source(FLOWS["ensemble_run"].fn)[0].parents[1]  # .../flows/pipelines.py
    if file and not Path(file).is_absolute() and not Path(file).exists():
        if (root / file).is_file():
            return (
                f"{file} is read from the directory deployed from ({Path.cwd()}): deploy "
                f"from {root}, or give {root / file}:{name}"
            )
    return (
        "give PATH.py:FLOW from the directory deployed from, e.g. "
        "flows/pipelines.py:ensemble_run"
    )


def _source(fn: Any) -> tuple[Path, str]:
    """Where a flow's function is defined: a script's copy of flows/pipelines.py, which
    ``prefect deploy`` loads from the file, is its own module but the same source."""
    return Path(inspect.getsourcefile(fn) or "").resolve(), fn.__qualname__


def _schedule_words(schedule: Any, entry: dict[str, Any]) -> str:
    """``cron 0 */6 * * * UTC``, ``interval 1:00:00``, ``rrule ...``, ``no schedule``."""
    if "cron" in entry:
        return f"cron {entry['cron']} {entry['timezone']}"
    for kind in ("interval", "rrule"):
        if getattr(schedule, kind, None) is not None:
            return f"{kind} {getattr(schedule, kind)}"
    return "no schedule"


def check_file(path: Path) -> tuple[list[str], list[str]]:
    """``wxens check``: the lines of the deployments of a schedule file or a prefect.yaml
    (told apart by :func:`is_prefect_yaml`), each checked or skipped, and the errors of
    all of them (each naming the file and the deployment); nothing is registered."""
    document = read_yaml(path)
    lines: list[str] = []
    errors: list[str] = []
    names: list[str] = []
    if is_prefect_yaml(document):
        for where, config in deployment_configs(path, document):
            try:
                deployment = map_deployment(where, config)
                run_in = RunDirectory(Path.cwd().resolve())
                if not deployment.skipped:  # nothing of another's flow is checked
                    run_in = run_directory(where, config, document)
            except InputError as err:
                errors.append(str(err))
                continue
            if run_in.unknown:  # said once, whether the checks pass or not
                lines.append(f"{deployment.name}: relative paths not checked: {run_in.unknown}")
            moved = run_in.path not in (None, Path.cwd().resolve())
            try:
                with reading_paths_in(run_in):
                    specs = deployment.check()
                    absent = [absent_store(s, relative=run_in.path is not None) for s in specs]
            except InputError as err:
                read_in = f" (relative paths read in {run_in.path}, after its pull steps)"
                errors.append(f"{err}{read_in * moved}")
                continue
            names += {spec.name for spec in specs}
            said = f"{deployment.flow}, {'; '.join(deployment.schedules)}, ok"
            if deployment.skipped:
                said = f"skipped, {deployment.skipped}"
            elif moved:
                said += f", relative paths read in {run_in.path}"
            lines.append(f"{deployment.name}: {said}")
            lines += [f"{deployment.name}: warning: {a}" for a in dict.fromkeys(absent) if a]
    else:
        for i, entry in enumerate(schedule_entries(path, document)):
            try:
                spec = check_entry(f"{path}: deployment {i + 1}", entry)
            except InputError as err:
                errors.append(str(err))
                continue
            names.append(spec.name)
            lines.append(f"{spec.name}: {spec.flow}, cron {spec.cron} {spec.timezone}, ok")
            if note := absent_store(spec):
                lines.append(f"{spec.name}: warning: {note}")
    try:
        check_names_differ(path, names)
    except InputError as err:
        errors.append(str(err))
    return lines, errors
