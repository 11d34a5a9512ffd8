"""A checkpoint fine-tuned (fair CRPS) through a short sampler, sampled with a longer one,
says so before the forecast or calibration: a researcher reached for the standard many-step
sampler (``--sampler edm_heun``, NFE 39, instead of the 2-step ``edm_euler`` it was
fine-tuned for), scored worse than persistence, and nothing said the fine-tune was why."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from tests.generators.tiny import two_step_run
from tests.generators.worker_logs import heard, listen

FINE_TUNE = "fine_tune={steps: 1, crps_members: 2, crps_nfe: 2}"
ROOT = Path(__file__).resolve().parents[2]
WARNING = "the checkpoint was fine-tuned for euler:nfe=2,noise_scale=1.0 (NFE 2)"


@pytest.fixture(scope="module")
def fine_tuned(tmp_path_factory):
    """The tiny run of :func:`two_step_run` trained to 7 January then fine-tuned one step
    through a 2-step Euler sampler (``root/run``), and the store."""
    root = tmp_path_factory.mktemp("fine-tuned")
    store = two_step_run(root, sets=[FINE_TUNE, "data.train={end: 2000-01-07}"])
    return root, store


@pytest.fixture(scope="module")
def configs_longer(tmp_path_factory):
    """The run of :func:`fine_tuned` whose config's own ``sampler:`` (edited by hand) is
    longer than its fine-tune's, and the store."""
    root = tmp_path_factory.mktemp("configs-longer")
    own = "sampler=heun:nfe=8"
    store = two_step_run(root, sets=[FINE_TUNE, "data.train={end: 2000-01-07}", own])
    return root, store


def wxens(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *argv], capture_output=True, text=True
    )


def forecast_argv(root, store, out: str, *sampler: str) -> list[str]:
    """``wxens forecast`` of one initial time with the run in ``root``."""
    return [
        "forecast", "--checkpoint", str(root / "run"), "--store", str(store.path),
        "--init", "2000-01-08T00", "--members", "2", "--lead", "6h", "--device", "cpu",
        "--out", str(root / out), "--no-progress", *sampler,
    ]  # fmt: skip


def forecast(root, store, out: str, *sampler: str) -> str:
    """``wxens forecast`` of one initial time with the run in ``root``; its stderr."""
    said = wxens(*forecast_argv(root, store, out, *sampler))
    assert said.returncode == 0, said.stderr
    return said.stderr


@pytest.fixture
def logged(monkeypatch, caplog):
    """``wxens ARGV`` in this process (no interpreter to start: the tests that assert on
    the log as printed, in order, run a subprocess): the messages ``generators`` logged,
    each once. The once-a-process memory of the pairs warned about is emptied first, so a
    warning said by an earlier test in this process is said again."""
    from flows.cli import main
    from generators import fine_tuned as warned

    def run(argv: list[str]) -> list[str]:
        monkeypatch.setattr(warned, "_said", set())  # each pair is said once a process
        logger = logging.getLogger("generators")  # Prefect's logging setup drops root handlers
        logger.addHandler(caplog.handler)
        caplog.clear()
        try:
            with caplog.at_level("INFO", logger="generators"):
                assert main(argv) == 0
        finally:
            logger.removeHandler(caplog.handler)
        # each record once, where the handler is on the root logger too
        return [r.getMessage() for r in dict.fromkeys(caplog.records)]

    return run


def test_a_longer_sampler_than_the_fine_tunes_is_warned_about_once(fine_tuned):
    root, store = fine_tuned
    said = forecast(root, store, "long.zarr", "--sampler", "heun:nfe=8")
    assert said.count(WARNING) == 1
    assert "members drawn with heun:nfe=8,noise_scale=1.0 (NFE 8)" in said
    assert "drop sampler= (--sampler) to use its own" in said
    assert said.index(WARNING) < said.index("INFO generators.rollout: forecast:")


def test_the_fine_tunes_own_sampler_is_not_warned_about(fine_tuned, logged):
    root, store = fine_tuned
    said = logged(forecast_argv(root, store, "own.zarr"))
    assert any(m.startswith("forecast: 1 ") for m in said), said  # the log was read
    assert not [m for m in said if "fine-tuned for" in m], said
    spread = ("--sampler", "euler:nfe=2,noise_scale=1.2")  # the same steps, more spread
    said = logged(forecast_argv(root, store, "spread.zarr", *spread))
    assert not [m for m in said if "fine-tuned for" in m], said


def test_a_configs_own_longer_sampler_is_warned_about(configs_longer, logged):
    """A config whose own ``sampler:`` (edited by hand) is longer than its fine-tune's: the
    forecast with no --sampler draws with it (it is preferred to the fine-tune's) and was
    not warned about; it is now, naming the --sampler that gives the fine-tune's."""
    root, store = configs_longer
    said = logged(forecast_argv(root, store, "own.zarr"))
    warned = [m for m in said if WARNING in m]
    assert len(warned) == 1, said
    assert "members drawn with heun:nfe=8,noise_scale=1.0 (NFE 8)" in warned[0]
    assert "its config's sampler: chose them; give sampler= (--sampler euler:nfe=2," in warned[0]


def test_a_checkpoint_without_a_fine_tune_is_not_warned_about(tmp_path, logged):
    store = two_step_run(tmp_path)
    said = logged(forecast_argv(tmp_path, store, "f.zarr", "--sampler", "heun:nfe=8"))
    assert any(m.startswith("forecast: 1 ") for m in said), said  # the log was read
    assert not [m for m in said if "fine-tuned for" in m], said


def test_a_calibration_with_a_longer_sampler_is_warned_about(fine_tuned, logged):
    root, store = fine_tuned
    said = logged([
        "calibrate", "--checkpoint", str(root / "run"), "--store", str(store.path),
        "--start", "2000-01-08", "--end", "2000-01-09", "--members", "2", "--device", "cpu",
        "--sampler", "euler:nfe=6", "--out", str(root / "calibrated.pt"), "--no-progress",
    ])  # fmt: skip
    warned = [m for m in said if WARNING in m]
    assert len(warned) == 1, said
    assert "members drawn with euler:nfe=6,noise_scale=1.0 (NFE 6)" in warned[0]


@pytest.mark.parametrize("processes", [True, False], ids=["worker-processes", "in-client"])
def test_a_dask_forecast_warns_on_the_client_once(fine_tuned, processes, monkeypatch, logged):
    """Under ``--dask-scheduler`` the warning was logged on the workers only (each
    ``forecast_to_store`` warns): the user's terminal, the client's, never showed it. The
    client now says it, before the tasks are submitted, and once: workers in the client's
    own process (``processes=False``) do not say it again."""
    from distributed import LocalCluster

    root, store = fine_tuned
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # for workers
    argv = forecast_argv(root, store, f"dask-{processes}.zarr", "--sampler", "heun:nfe=8")
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=processes, dashboard_address=":0"
    ) as cluster:
        said = logged([*argv, "--dask-scheduler", cluster.scheduler_address])
    warned = [i for i, message in enumerate(said) if WARNING in message]
    assert len(warned) == 1, said
    assert warned[0] < next(i for i, m in enumerate(said) if m.startswith("forecast: 1 ")), said


@pytest.mark.parametrize("chosen_by", ["--sampler", "config"])
def test_a_dask_forecast_warns_on_the_client_not_on_its_workers(
    chosen_by, fine_tuned, configs_longer, monkeypatch, logged
):
    """The longer sampler a config's own ``sampler:`` chose was warned about on the dask
    workers only, in their logs, which the user's terminal (the client's) does not show.
    The client says it, as it says that of ``--sampler``, before the tasks are submitted;
    the workers, whose process is another, say neither again."""
    from distributed import Client, LocalCluster

    root, store = fine_tuned if chosen_by == "--sampler" else configs_longer
    sampler = ("--sampler", "heun:nfe=8") if chosen_by == "--sampler" else ()
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # for workers
    argv = forecast_argv(root, store, f"workers-{chosen_by}.zarr", *sampler)
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        client.run(listen)
        said = logged([*argv, "--dask-scheduler", cluster.scheduler_address])
        (on_worker,) = client.run(heard).values()
    warned = [i for i, message in enumerate(said) if WARNING in message]
    assert len(warned) == 1, said
    assert "members drawn with heun:nfe=8,noise_scale=1.0 (NFE 8)" in said[warned[0]]
    assert warned[0] < next(i for i, m in enumerate(said) if m.startswith("forecast: 1 ")), said
    assert any(m.startswith("forecast: 1 ") for m in on_worker), on_worker  # it was heard
    assert not [m for m in on_worker if "fine-tuned for" in m], on_worker
