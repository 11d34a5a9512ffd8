"""What a deployment of any wxens flow relies on, wherever the flow's code lives: the
entrypoint it is served under imports the flow with the start-up a flow process needs, and
the ``flows.pipelines.<flow>`` entrypoint a deployment registered earlier stores (on a
user's Prefect server) still names that flow."""

from __future__ import annotations

import importlib.machinery
import os
import subprocess
import sys
from pathlib import Path

from prefect.flows import load_flow_from_entrypoint

from flows.cli import RUN_TRACEBACKS_ENV
from flows.deployments import DeploymentSpec, to_deployments
from flows.pipelines import FLOWS
from flows.settings import OFFLINE_DEFAULTS

STARTED = """
import logging, os, sys
module = sys.argv[1]
__import__(module)
from flows.cli import RUN_LOGGERS, without_wxens_traceback
from flows.settings import OFFLINE_DEFAULTS
unset = [name for name in OFFLINE_DEFAULTS if name not in os.environ]
loud = [n for n in RUN_LOGGERS if without_wxens_traceback not in logging.getLogger(n).filters]
assert not unset and not loud, f"import of {module}: unset {unset}, tracebacks kept on {loud}"
"""
"""Run in a fresh process: importing the module ``argv[1]`` ran ``prepare_flow_process``."""


def test_every_flow_loads_from_the_entrypoint_earlier_deployments_store():
    """A deployment on a running server keeps the entrypoint it was registered with: the
    ``flows.pipelines`` path of each flow must still load that flow."""
    for name, flow in FLOWS.items():
        loaded = load_flow_from_entrypoint(f"flows.pipelines.{name}")
        assert loaded.name == name and loaded.fn is flow.fn, name


def test_the_module_each_deployment_imports_prepares_the_flow_process():
    """Each served run is a subprocess importing its deployment's entrypoint: whichever
    module that names, its import loads the extensions, quiets Prefect's tracebacks of a
    wxens error and sets the offline defaults, as importing ``flows.pipelines`` does."""
    specs = tuple(DeploymentSpec(name=f"d-{name}", flow=name) for name in FLOWS)
    deployments = to_deployments(specs)
    entrypoints = {s.flow: d.entrypoint for s, d in zip(specs, deployments, strict=True)}
    for name, entrypoint in entrypoints.items():
        assert load_flow_from_entrypoint(entrypoint).name == name, entrypoint
    env = {k: v for k, v in os.environ.items() if k not in {*OFFLINE_DEFAULTS, RUN_TRACEBACKS_ENV}}
    for module in sorted({e.rpartition(".")[0] for e in entrypoints.values()}):
        done = subprocess.run(
            [sys.executable, "-c", STARTED, module], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-2000:]


def test_every_flow_loads_from_the_file_path_entrypoint_of_prefect_deploy():
    """``prefect deploy`` stores ``flows/pipelines.py:<flow>`` and a worker loads it as a
    script, with ``flows/`` first on ``sys.path``: a module there named as an installed
    package (``flows/dask.py``) was imported in its place, and every run crashed before its
    flow began ("No module named 'dask.array'; 'dask' is not a package")."""
    script = (
        "import sys\nfrom prefect.flows import load_flow_from_entrypoint\n"
        "for name in sys.argv[1:]:\n"
        "    assert load_flow_from_entrypoint(f'flows/pipelines.py:{name}').name == name\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script, *FLOWS], cwd=root, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_no_flows_module_is_named_as_an_installed_top_level_module():
    """The same, for a module added later: none in ``flows/`` may share its name with one
    Python would otherwise import (a worker puts ``flows/`` before site-packages)."""
    root = Path(__file__).resolve().parents[2]
    names = {p.stem for p in (root / "flows").iterdir() if p.suffix == ".py" or p.is_dir()}
    names -= {"__init__", "__pycache__"}
    # searched on sys.path without flows/ itself, which a test loading an entrypoint as a
    # file in this process may have put there (every flows module then "clashed")
    path = [p for p in sys.path if Path(p or ".").resolve() != root / "flows"]
    clashes = sorted(
        n
        for n in names
        if n.isidentifier()
        and (n in sys.builtin_module_names or importlib.machinery.PathFinder.find_spec(n, path))
    )
    assert not clashes, f"flows/ modules shadow installed ones: {clashes}"
