"""``wxens serve`` on a real Prefect server: register a cron deployment, trigger it through
the client, watch it complete; and the schedule file's bad input."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import xarray as xr
import yaml

from pipeline.errors import InputError
from tests.flows.conftest import stop_process_group

pytestmark = pytest.mark.slow

SYNTHETIC = "synthetic:n_lat=6,n_lon=8,n_times=12,step=6h,seed=4"
ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "configs" / "uk_schedule.yaml"
"""The README's ``wxens serve configs/uk_schedule.yaml``, run from the repository root."""
REGISTER_TIMEOUT_S = 180
RUN_TIMEOUT_S = 300


def write_schedule(path: Path, **overrides: object) -> Path:
    deployment = {
        "name": "tiny-ingest",
        "flow": "ingest",
        "cron": "0 */6 * * *",
        "parameters": {"sources": [SYNTHETIC], "store": "tiny.zarr", "variables": ["t2m"]},
        **overrides,
    }
    path.write_text(yaml.safe_dump({"deployments": [deployment]}))
    return path


def wait_for_deployment(name: str, serve: subprocess.Popen, log: Path, *, polled=False):
    """The deployment ``name`` once ``serve`` has registered it; with ``polled``, once its
    runner has also polled the server for its runs (the server marks it ready): the runner
    has started, its signal handlers in place."""
    from prefect import get_client
    from prefect.client.schemas.objects import DeploymentStatus
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + REGISTER_TIMEOUT_S
    with get_client(sync_client=True) as client:
        while True:
            try:
                deployment = client.read_deployment_by_name(name)
                if not polled or deployment.status == DeploymentStatus.READY:
                    return deployment
            except ObjectNotFound:
                pass
            if serve.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"`wxens serve` did not register {name}:\n{log.read_text()[-3000:]}")
            time.sleep(0.25)


def wait_for_flow_run(flow_run_id, log: Path):
    """The flow run ``flow_run_id`` once it has ended (its state final)."""
    from prefect import get_client

    deadline = time.monotonic() + RUN_TIMEOUT_S
    with get_client(sync_client=True) as client:
        while True:
            flow_run = client.read_flow_run(flow_run_id)
            if flow_run.state is not None and flow_run.state.is_final():
                return flow_run
            if time.monotonic() > deadline:
                pytest.fail(f"{flow_run.state} after {RUN_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)


@dataclass(frozen=True)
class Served:
    """One ``wxens serve`` of several deployments, each triggered once through the client."""

    workdir: Path
    process: subprocess.Popen
    log: Path
    deployments: dict[str, object]
    flow_run_ids: dict[str, object]

    def finished(self, name: str):
        """The triggered run of the deployment ``name`` once it has ended."""
        return wait_for_flow_run(self.flow_run_ids[name], self.log)


SERVED = {
    "ingest/tiny-ingest": {},
    "ingest/missing-ingest": {
        "parameters": {"sources": ["incoming/none-*.grib"], "store": "missing.zarr"}
    },
    "verify/mae-verify": {
        "flow": "verify",
        "parameters": {"forecast": "clim.zarr", "truth": "truth.zarr", "scores": "scores.nc"},
    },
}
"""The deployments of the shared ``wxens serve`` (:func:`served`): its working directory
holds ``truth.zarr`` and ``clim.zarr``, which the verify reads."""


@pytest.fixture(scope="module")
def served(prefect_server, tmp_path_factory) -> Iterator[Served]:
    """A ``wxens serve`` of :data:`SERVED`, started in a directory of its own with an
    extension (the ``mae`` score of ``tests/verification/test_extensions.py``) installed on
    its path, and a run of each deployment triggered at once through the client
    (``run_deployment``, not waiting): the runs go on together while the tests wait for
    theirs. One process and one wait for registration serve the tests that each read the
    run of one deployment; the process is stopped after the module."""
    from prefect.deployments import run_deployment

    from flows.cli import main
    from tests.verification.test_extensions import MAE_MODULE, install

    workdir = tmp_path_factory.mktemp("served")
    site = workdir / "site"
    site.mkdir()
    install(site, "wxens-mae", "mae", "wxens_mae", MAE_MODULE)
    truth, forecast = workdir / "truth.zarr", workdir / "clim.zarr"
    assert main(["ingest", SYNTHETIC, "--store", str(truth), "--no-progress"]) == 0
    draw = ["baseline", "climatology", "--store", str(truth), "--train", "2000-01-01/2000-01-02"]
    draw += ["--init", "2000-01-03T00", "--members", "2", "--lead", "6h", "--out", str(forecast)]
    assert main([*draw, "--no-progress"]) == 0
    entries = []
    for name, overrides in SERVED.items():
        entry = {"name": name.partition("/")[2], "flow": "ingest", "cron": "0 */6 * * *"}
        entry["parameters"] = {"sources": [SYNTHETIC], "store": "tiny.zarr", "variables": ["t2m"]}
        entries.append({**entry, **overrides})
    schedule = workdir / "schedule.yaml"
    schedule.write_text(yaml.safe_dump({"deployments": entries}))
    log = workdir / "serve.log"
    path = os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "serve", str(schedule)],
            cwd=workdir,
            env={**prefect_server.env, "PYTHONPATH": path},
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deployments = {name: wait_for_deployment(name, process, log) for name in SERVED}
        runs = {name: run_deployment(name, timeout=0).id for name in SERVED}
        yield Served(workdir, process, log, deployments, runs)
    finally:
        stop_process_group(process)


def test_serve_registers_a_cron_deployment_that_runs_when_triggered(served):
    from pipeline.store import open_store

    deployment = served.deployments["ingest/tiny-ingest"]
    assert [s.schedule.cron for s in deployment.schedules] == ["0 */6 * * *"]
    assert deployment.schedules[0].schedule.timezone == "UTC"

    flow_run = served.finished("ingest/tiny-ingest")
    assert flow_run.state.is_completed(), f"{flow_run.state}\n{served.log.read_text()[-3000:]}"
    store = open_store(served.workdir / "tiny.zarr")  # relative to where `wxens serve` runs
    assert store.dataset.sizes["time"] == 12
    results = served.workdir / ".wxens" / "prefect-results"  # results persisted there
    assert any("tiny.zarr" in r.read_text() for r in results.iterdir()), sorted(results.iterdir())


def test_a_served_run_that_bad_input_fails_logs_its_message_without_a_traceback(served):
    """Each served run executes in a spawned subprocess: the CLI's log filter must reach it,
    or a missing source logs three Prefect tracebacks around the one line that matters. The
    log is read once the run's own line "Finished in state Failed" is there (its exception
    logged before it)."""
    flow_run = served.finished("ingest/missing-ingest")
    assert flow_run.state.is_failed(), f"{flow_run.state}\n{served.log.read_text()[-3000:]}"
    finished = f"Flow run '{flow_run.name}' - Finished in state Failed"
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while finished not in (text := served.log.read_text()):
        assert time.monotonic() < deadline, text[-3000:]  # the runner relays its output
        time.sleep(0.25)
    assert "none-*.grib" in text, text[-3000:]
    assert "Traceback" not in text, text[-3000:]


@pytest.mark.parametrize(
    ("sig", "line", "code"),
    [(signal.SIGTERM, "terminated (SIGTERM)", 143), (signal.SIGINT, "interrupted", 130)],
)
def test_a_signal_stops_serve_pausing_its_schedules_and_it_exits_as_stopped_by_it(
    spawn, tmp_path, sig, line, code
):
    """SIGTERM (systemd, Kubernetes, SLURM) or Ctrl-C (to the group, as a terminal sends it),
    sent once the runner has polled for runs, pauses the served deployment's schedule, as
    before; then ``wxens serve`` says so in one last line and exits 143 or 130, as every
    other command stopped by a signal (it exited 0, which a supervisor reads as a server
    that ended by itself)."""
    from prefect import get_client

    name = f"stopped-{sig.name.lower()}"
    schedule = write_schedule(tmp_path / "schedule.yaml", name=name)
    log = tmp_path / "serve.log"
    serve = spawn(
        [sys.executable, "-m", "flows.cli", "serve", str(schedule)], cwd=tmp_path, log=log
    )
    assert not wait_for_deployment(f"ingest/{name}", serve, log, polled=True).paused
    (os.kill if sig == signal.SIGTERM else os.killpg)(serve.pid, sig)
    serve.wait(timeout=120)
    text = log.read_text()
    assert serve.returncode == code, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert text.splitlines()[-1] == f"wxens serve: {line}", text[-3000:]
    with get_client(sync_client=True) as client:
        assert client.read_deployment_by_name(f"ingest/{name}").paused


RUN = {"store": "s.zarr", "checkpoint": "m", "forecast_store": "f.zarr", "scores": "s.nc"}


@pytest.mark.parametrize(
    ("flow", "parameters", "message"),
    [
        ("ensemble_run", {"members": 0}, "members must be a whole number of at least 1, got 0"),
        ("ensemble_run", {"cycle_hours": 0}, "cycle_hours must be a whole number of at least 1"),
        ("ensemble_run", {"leads_hours": [6.0, -6.0]}, "leads_hours must all be positive"),
        ("ensemble_run", {"init_times": ["2019-13-01T00"]}, "'2019-13-01T00' is not a time"),
        (
            "ensemble_run",
            {"init_cycle_hours": 0},
            "init_cycle_hours must be a positive number of hours, got 0",
        ),
        (
            "ensemble_run",
            {"baseline_name": "persistance", "baseline_train": "2019-03-01/2019-03-21"},
            "persistance",
        ),
        ("ensemble_run", {"baseline_name": "persistence"}, "needs baseline_train"),
        ("ensemble_run", {"bias_correction": 1.5, "corrected_store": "c.zarr"}, "1.5"),
        ("ensemble_run", {"bias_correction": 0.2}, "need corrected_store, the store to write"),
        ("ensemble_run", {"report": "s.nc"}, "scores and report both name s.nc"),
        (
            "ensemble_run",
            {
                "baseline_name": "persistence",
                "baseline_train": "2019-03-01/2019-03-21",
                "baseline_store": "./f.zarr",
            },
            "forecast_store and baseline_store both name ./f.zarr; give each its own store",
        ),
        (
            "ensemble_run",
            {"corrected_store": "f.zarr"},
            "forecast_store and corrected_store both name f.zarr",
        ),
        ("ensemble_run", {"forecast_store": "s.zarr"}, "store and forecast_store both name"),
        (
            "baseline",
            {"name": "climatology", "store": "s", "train": "2019-03-01/2019-03-21"}
            | {"forecast": "f", "out": "f"},
            "forecast and out both name f",
        ),
        ("verify", {"forecast": "f.zarr", "truth": "s.zarr", "scores": "."}, "is a directory"),
        (
            "verify",
            {"forecast": "f.zarr", "truth": "s.zarr", "scores": "s.nc", "members": "bogus"},
            "members='bogus': expected one of all, perturbed",
        ),
        ("ensemble_run", {"sampler": "heun:nfe=x"}, "nfe='x' is not an integer"),
        (  # a bad event refused as the file loads, not by each cycle's products step
            "ensemble_run",
            {"products": {"probability": ["t2m<freezing"]}, "products_out": "p.nc"},
            "--probability 't2m<freezing'): not VARIABLE<VALUE[UNITS]",
        ),
        ("ensemble_run", {"products": {"mean": True}}, "products and products_out go together"),
        (
            "ensemble_run",
            {"products": {"mean": True, "quantiles": "10,150"}, "products_out": "p.nc"},
            "give percents in [0, 100]",
        ),
        ("ensemble_run", {"products": {"mean": True}, "products_out": "s.nc"}, "both name s.nc"),
        (  # a file per initial time: a template's fields checked as the file loads
            "ensemble_run",
            {"products": {"mean": True}, "products_out": "p/uk_{cycle}.nc"},
            "products_out 'p/uk_{cycle}.nc': unknown field {cycle}; give {init:FORMAT}",
        ),
        (
            "ensemble_run",
            {"products": {"mean": True}, "products_out": "uk_{init:%Y%m%d %H:%M}.nc"},
            "{init:%Y%m%d %H:%M} is not a file-name format",
        ),
        (
            "ensemble_run",
            {"products": {"mean": True}, "products_out": "uk_{init:%Y%m%d}.nc"},
            "gives 2000-01-01T00:00 and 2000-01-01T01:00 one file, uk_20000101.nc",
        ),
        (
            "ensemble_run",
            {"products": {"mean": True}, "products_out": "f.zarr/p_{init:%Y%m%dT%H}.nc"},
            "p_20000101T00.nc lies inside",
        ),
        (
            "products",
            {"forecast": "f.zarr", "out": "p_{init!r}.nc", "products": {"mean": True}},
            "out 'p_{init!r}.nc': {init!r} is not a file-name format",
        ),
        (
            "products",
            {"forecast": "f.zarr", "out": "p.nc", "products": {"median": True}},
            "give a mapping of mean, spread, quantiles, probability, units",
        ),
        (  # an ENS file's perturbed members, as verify's: a bad choice refused as it loads
            "products",
            {"forecast": "f.grib", "out": "p.nc", "products": {"mean": True}, "members": "pf"},
            "members='pf': expected one of all, perturbed",
        ),
        (  # its initial times, as ensemble_run gives them, checked as forecast's
            "products",
            {"forecast": "f.zarr", "out": "p.nc", "products": {"mean": True}, "init_times": ["x"]},
            "init_times: 'x' is not a time such as 2019-03-22T00",
        ),
        (
            "verify",
            {"forecast": "f.nc", "truth": "s.zarr", "scores": "f.nc"},
            "scores f.nc is what forecast reads",
        ),
        (
            "baseline",
            {"name": "climatology", "store": "s", "train": "soon", "forecast": "f", "out": "b"},
            "soon",
        ),
    ],
)
def test_a_schedule_file_value_a_run_would_refuse_is_refused_at_load(
    tmp_path, flow, parameters, message
):
    """Caught when `wxens serve` loads the file, not hours later when the run fires."""
    from flows.deployments import load_schedule

    given = {**RUN, **parameters} if flow == "ensemble_run" else parameters
    schedule = write_schedule(tmp_path / "schedule.yaml", flow=flow, parameters=given)
    with pytest.raises(InputError, match="deployment 1") as err:
        load_schedule(schedule)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("given", "warned"),
    [({}, True), ({"bias_correction": 0.3}, False), ({"train_config": "c.yaml"}, False)],
    ids=["untuned", "weight-given", "trained-by-the-run"],
)
def test_a_corrected_store_no_run_will_write_is_warned_of_as_the_file_loads(
    tmp_path, caplog, given, warned
):
    """An ensemble run's corrected_store with its checkpoint never tuned and no weight: each
    run delivered the raw forecast and warned in its own log, hours after `wxens serve`
    started; serve now says so once as it loads the file, naming `wxens tune`."""
    from flows.deployments import load_schedule

    (tmp_path / "m").mkdir()  # a training run's directory, never tuned
    (tmp_path / "s.zarr").mkdir()  # the analysis store is there (else that is warned of)
    parameters = {**RUN, "corrected_store": "bc.zarr", **given, "store": str(tmp_path / "s.zarr")}
    parameters["checkpoint"] = str(tmp_path / "m")
    schedule = write_schedule(
        tmp_path / "schedule.yaml", flow="ensemble_run", parameters=parameters
    )
    logger = logging.getLogger("flows.deployments")
    logger.addHandler(caplog.handler)
    try:
        load_schedule(schedule)
    finally:
        logger.removeHandler(caplog.handler)
    said = [r.getMessage() for r in caplog.records if r.name == logger.name]
    assert bool(said) is warned, said
    if warned:
        assert "deployment 1" in said[0] and "has no tuned correction" in said[0], said
        assert "wxens tune" in said[0] and "f.zarr uncorrected" in said[0], said
        assert "bc.zarr" in said[0], said


def test_a_store_not_there_yet_is_warned_of_as_the_file_loads(tmp_path, monkeypatch):
    """`wxens serve` took a schedule whose analysis store was not there and each run failed
    as it fired. A feed may make it before the first run: not refused, but said once as
    the file loads, naming the path and how a store is made; not where the run ingests it
    first (sources) nor once it is there."""
    from flows.deployments import load_schedule

    monkeypatch.chdir(tmp_path)  # the parameters' relative paths are read here
    (tmp_path / "there.zarr").mkdir()
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # this logger's records alone, each once
    logger = logging.getLogger("flows.deployments")
    logger.addHandler(handler)
    said = []
    try:
        for given in ({}, {"sources": [SYNTHETIC]}, {"store": "there.zarr"}):
            schedule = write_schedule(
                tmp_path / "schedule.yaml", flow="ensemble_run", parameters={**RUN, **given}
            )
            records.clear()
            load_schedule(schedule)
            said.append([r.getMessage() for r in records if r.levelno == logging.WARNING])
    finally:
        logger.removeHandler(handler)
    make = "make it with `wxens ingest SOURCES --store s.zarr`"
    assert said[0] == [
        f"{schedule}: deployment 1: store s.zarr does not exist yet: each run fails until it "
        f"does (a feed may make it before the first run); {make}"
    ]
    assert said[1:] == [[], []]


def test_the_shipped_schedule_loads_and_builds_its_deployments():
    """The README said ``wxens serve schedule.yaml`` and no schedule file shipped: the
    command could not run as written. The shipped one passes every check serve makes before
    it registers (flows, crons, parameters) and gives Prefect's deployments of them."""
    from flows.deployments import load_schedule, to_deployments

    specs = load_schedule(SHIPPED)
    assert [(s.name, s.flow) for s in specs] == [("uk-ensemble", "ensemble_run")]
    assert specs[0].parameters["store"] == "stores/uk.zarr"  # the README's store
    deployments = to_deployments(specs)
    assert [d.entrypoint for d in deployments] == [f"flows.pipelines.{s.flow}" for s in specs]
    assert [d.parameters for d in deployments] == [s.parameters for s in specs]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "wxens serve configs/uk_schedule.yaml" in readme


def test_the_docs_show_the_shipped_schedule_as_it_is(tmp_path):
    """docs/flows.md shows the example schedule file: the one that ships, not a copy that
    drifts from it."""
    import re

    from flows.deployments import load_schedule

    page = (ROOT / "docs" / "flows.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", page, re.DOTALL)
    assert SHIPPED.read_text(encoding="utf-8") in blocks
    # the feed's deployments, shown apart, are valid beside the shipped one
    feed = next(b for b in blocks if b.startswith("  - name: uk-ingest"))
    both = tmp_path / "with_a_feed.yaml"
    both.write_text(SHIPPED.read_text(encoding="utf-8") + feed, encoding="utf-8")
    names = ["uk-ensemble", "uk-ingest", "ens-verify", "ens-products"]
    assert [s.name for s in load_schedule(both)] == names


def test_every_flow_check_is_of_a_flow():
    from flows.parameter_checks import FLOW_CHECKS
    from flows.pipelines import FLOWS

    assert set(FLOW_CHECKS) <= set(FLOWS)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"flow": "forcast"}, "unknown flow 'forcast'"),
        ({"parameters": None}, "parameters must be a mapping"),
        ({"parameters": ["store"]}, "parameters must be a mapping"),
        ({"name": ""}, "name '': give a non-empty name"),
        ({"name": "uk/ensemble"}, "name 'uk/ensemble': give a non-empty name without"),
        ({"name": 6}, "name 6"),
        ({"cron": "every 6 hours"}, "cron 'every 6 hours'"),
        # croniter reads a sixth field as seconds: '*' there starts 60 runs a minute
        ({"cron": "0 */6 * * * *"}, "cron '0 */6 * * * *' has 6 fields"),
        ({"cron": "0 0 */6 * * * *"}, "has 7 fields"),
        ({"parameters": {"store": "x.zarr"}}, "needs parameter(s) ['sources']"),
        (
            {"parameters": {"sources": ["a.grib"], "store": "x", "members": 5}},
            "no parameter(s) ['members']",
        ),
        (
            {"parameters": {"sources": ["a.grib"], "store": "x", "overwrite": "maybe"}},
            "do not validate",
        ),
        (
            {"parameters": {"sources": ["s3://KEY:SECRET@bucket/era5.zarr"], "store": "x"}},
            "parameter 'sources' holds a secret (s3://***@bucket/era5.zarr)",
        ),
        (
            {"parameters": {"sources": ["https://h/x.zarr?token=t0k"], "store": "x"}},
            "holds a secret (https://h/x.zarr?token=***)",
        ),
        # a feed's glob without the files' extension failed every run as it fired
        (
            {"parameters": {"sources": ["incoming/*"], "store": "x"}},
            "sources: no source reads 'incoming/*'",
        ),
        (
            {"flow": "ensemble_run", "parameters": {**RUN, "sources": ["in/*", "a.grib"]}},
            "sources: no source reads 'in/*'",
        ),
    ],
)
def test_schedule_file_errors_name_the_entry_and_the_fix(tmp_path, overrides, message):
    from flows.deployments import load_schedule

    schedule = write_schedule(tmp_path / "schedule.yaml", **overrides)
    with pytest.raises(InputError, match="deployment 1") as err:
        load_schedule(schedule)
    assert message in str(err.value)
    assert "SECRET" not in str(err.value) and "t0k" not in str(err.value)


def test_serve_without_a_server_says_how_to_start_one(tmp_path, capsys):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.cli import main

    schedule = write_schedule(tmp_path / "schedule.yaml")
    httpx = logging.getLogger("httpx")
    httpx.setLevel(logging.NOTSET)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert main(["serve", str(schedule)]) == 2
    assert "prefect server start" in capsys.readouterr().err
    assert httpx.level == logging.WARNING  # not a line per runner poll of the server


def test_serve_with_its_server_stopped_says_how_to_start_that_one(tmp_path, capsys):
    """PREFECT_API_URL set to a server on another port than Prefect's default, stopped:
    the error told its user to set PREFECT_API_URL to http://127.0.0.1:4200/api, where no
    server was either; it says how to start the one configured."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.cli import main
    from tests.flows.conftest import _free_loopback_port

    port = _free_loopback_port()  # nothing listens there
    url = f"http://127.0.0.1:{port}/api"
    with temporary_settings(updates={PREFECT_API_URL: url}):
        assert main(["serve", str(write_schedule(tmp_path / "schedule.yaml"))]) == 2
    err = capsys.readouterr().err
    assert f"the Prefect server at {url} does not answer" in err, err
    assert f"`prefect server start --port {port}`" in err, err
    assert "4200" not in err, err


def test_a_served_verify_run_computes_the_score_of_an_installed_extension(served):
    """Each served run is a subprocess of `wxens serve` importing flows.steps: the
    extensions on its path load there, and their score is in the scores file it writes."""
    flow_run = served.finished("verify/mae-verify")
    assert flow_run.state.is_completed(), f"{flow_run.state}\n{served.log.read_text()[-3000:]}"
    card = xr.open_datatree(served.workdir / "scores.nc")["scorecard"].to_dataset()
    assert "fair_crps" in card and "mean_abs_error" in card
