"""Where a worker's run of a prefect.yaml deployment reads its parameters' relative paths
(stores, checkpoints, outputs): the directory its pull steps leave it in, found as Prefect
finds it but without running a step (``wxens check``, :mod:`flows.prefect_yaml`).

Before each run a worker runs the deployment's pull steps (``prefect.runner``'s
``prepare_workspace``), and ``prefect.deployments.steps.set_working_directory`` changes
the directory the run starts in. wxens follows that step only: it changes no file. After
any other step (``git_clone``, ``pull_from_s3``, ``run_shell_script``, ...), which only the
worker can run, the run's files cannot be known here, and neither can a directory that
only the worker fills in (``{{ prefect.variables.X }}``) or one relative to where the
worker starts the run when the file does not say where that is.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import InputError

SET_WORKING_DIRECTORY = "prefect.deployments.steps.set_working_directory"
IMAGE_DIRECTORY = "/opt/prefect"
"""The directory of Prefect's default pull step for a deployment run in an image."""


@dataclass(frozen=True)
class RunDirectory:
    """Where a deployment's runs read relative paths: ``path``, or None where that cannot
    be known here, ``unknown`` saying why (naming the step)."""

    path: Path | None
    unknown: str = ""


def pull_steps(config: dict[str, Any], document: dict[str, Any]) -> list[Any] | None:
    """The pull steps ``prefect deploy`` (``prefect.cli.deploy._core``) stores for the
    deployment ``config`` of the prefect.yaml ``document``: its own ``pull``, else the
    file's; none where either is an explicit ``[]``; None where neither gives a step and
    Prefect makes its default one."""
    own, top = config.get("pull"), document.get("pull")
    if (config["pull"] if "pull" in config else top) == []:
        return []
    return own or top or None


def run_directory(where: str, config: dict[str, Any], document: dict[str, Any]) -> RunDirectory:
    """The directory the pull steps of a deployment (``config`` of the prefect.yaml
    ``document``) leave each run in; InputError naming ``where`` and the directory where
    set_working_directory names one that is not there (each run's pull step would fail)."""
    job = (config.get("work_pool") or {}).get("job_variables") or {}
    steps = pull_steps(config, document)
    if steps is None:  # prefect deploy's own: where it was run, or in the image
        builds = config.get("build") or document.get("build") or []
        if job.get("image") or any("build_docker_image" in str(step) for step in builds):
            return RunDirectory(
                None,
                f"Prefect's default pull step of an image, {SET_WORKING_DIRECTORY} "
                f"{IMAGE_DIRECTORY}, is inside the image",
            )
        return RunDirectory(Path.cwd().resolve())
    # A run starts in its worker's working_dir (a process pool's job variable; without
    # one a new temporary directory): a relative directory is read from there.
    start = str(job.get("working_dir") or "")
    here = Path(start).resolve() if Path(start).is_absolute() else None
    outputs: dict[str, Any] = {}
    for step in steps:
        name, directory, step_id = _set_working_directory(step, outputs)
        if directory is None:
            return RunDirectory(None, f"its pull step {name} runs only on the worker")
        if not directory:
            return RunDirectory(
                None, f"its pull step {name} changes to a directory only the worker knows"
            )
        target = Path(directory).expanduser()
        if not target.is_absolute():
            if here is None:
                return RunDirectory(
                    None,
                    f"its pull step {name} changes to {directory!r}, relative to where the "
                    "worker starts the run (a process pool's working_dir job variable, "
                    "else a new temporary directory), which the file does not give",
                )
            target = here / target
        if not target.is_dir():
            raise InputError(
                f"{where}: its pull step {name} changes to {target}, which is not a "
                "directory here: each run would fail as it starts; give the directory "
                "the worker runs in"
            )
        here = target.resolve()
        outputs["directory"] = str(here)  # as run_steps passes a step's output on
        if step_id:
            outputs[step_id] = {"directory": str(here)}
    if here is None:
        return RunDirectory(
            None,
            "no pull step sets its directory, and the file does not give the worker's "
            "(a process pool's working_dir job variable)",
        )
    return RunDirectory(here)


def _set_working_directory(step: Any, outputs: dict[str, Any]) -> tuple[str, str | None, Any]:
    """(the step's name, the directory it changes to, its id) of a set_working_directory
    step, its placeholders filled in as the worker's run_step fills them (earlier steps'
    outputs, then the environment): "" where one only the worker can fill remains (a
    variable, a block); None for any other step."""
    from prefect.deployments.steps import set_working_directory
    from prefect.deployments.steps.core import (
        RESERVED_KEYWORDS,
        _get_step_fully_qualified_name_and_inputs,
    )
    from prefect.utilities.importtools import import_object
    from prefect.utilities.templating import apply_values, find_placeholders

    if not isinstance(step, dict) or len(step) != 1:
        return repr(step), None, None
    fqn, inputs = _get_step_fully_qualified_name_and_inputs(step)
    name = fqn.rsplit(".", 1)[-1]
    try:  # the step names a function; only Prefect's own modules are imported to see which
        ours = fqn.startswith("prefect.") and import_object(fqn) is set_working_directory
    except (ImportError, AttributeError, ValueError):
        ours = False
    if not ours or not isinstance(inputs, dict):
        return f"{name} ({fqn})", None, None
    step_id = inputs.get("id")
    inputs = {k: v for k, v in inputs.items() if k not in RESERVED_KEYWORDS}
    inputs = apply_values(inputs, outputs, remove_notset=False)
    directory = apply_values(inputs, dict(os.environ), remove_notset=False).get("directory")
    if not isinstance(directory, str) or find_placeholders(directory):
        return name, "", step_id
    return name, directory, step_id


@contextmanager
def reading_paths_in(run_in: RunDirectory) -> Iterator[None]:
    """Run the checks within, in the run's directory, as the worker runs the flow there; in
    a new empty directory where that cannot be known, so that the checks of the files at
    relative paths find none and pass, and the others (of the values alone) still run."""
    back = Path.cwd()
    where = tempfile.TemporaryDirectory() if run_in.path is None else nullcontext(run_in.path)
    with where as directory:
        os.chdir(directory)
        try:
            yield
        finally:
            os.chdir(back)
