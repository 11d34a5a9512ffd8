"""A forecast into a store names the spread calibration it applies only once the store it
extends has accepted it."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from generators.checkpoint import load_checkpoint
from generators.config import parse_sampler, sampler_spec
from generators.correction.spread import SpreadCalibration
from generators.rollout_store import forecast_to_store
from pipeline.errors import StoreError
from tests.generators.tiny import two_step_run

APPLYING = "applying the checkpoint's spread calibration"
SAMPLER = "euler:nfe=2"
INITS = pd.date_range("2000-01-08T00", periods=2, freq="6h")


def calibrated_checkpoint(root, factor: float = 1.2):
    """The checkpoint of :func:`two_step_run` in ``root`` with a spread calibration fitted
    (so it says) on forecasts of :data:`SAMPLER`, of spread factor ``factor``."""
    loaded = load_checkpoint(root / "run" / "last.pt")
    calibration = SpreadCalibration(
        channels=("t2m",),
        leads_hours=(6.0,),
        factors=np.full((1, 1), factor),
        ssr_before=np.full((1, 1), 0.8),
        ssr_after=np.ones((1, 1)),
        period="2000-01-08/2000-01-10",
        members=2,
        n_inits=4,
        sampler=sampler_spec(parse_sampler(SAMPLER)),
    )
    return dataclasses.replace(loaded, calibration=calibration.to_dict())


def test_a_sampler_the_calibration_refuses_is_refused_before_it_is_named_applied(tmp_path):
    """``wxens forecast --sampler`` with another sampler than the calibration's logged
    "applying the checkpoint's spread calibration ..." (and the training-period warning),
    then refused the sampler, after reading the store and building the network."""
    store = two_step_run(tmp_path)
    calibrated_checkpoint(tmp_path).save(tmp_path / "calibrated.pt")
    argv = ["forecast", "--checkpoint", str(tmp_path / "calibrated.pt"), "--store"]
    argv += [str(store.path), "--init", "2000-01-08T00", "--members", "2", "--lead", "6h"]
    argv += ["--out", str(tmp_path / "f.zarr"), "--device", "cpu", "--no-progress"]
    said = subprocess.run(
        [sys.executable, "-m", "flows.cli", *argv, "--sampler", "euler:nfe=3"],
        capture_output=True,
        text=True,
    )
    assert said.returncode == 2
    assert "calibration was fitted on forecasts of euler:nfe=2" in said.stderr
    assert APPLYING not in said.stderr
    assert "WARNING" not in said.stderr and "reading" not in said.stderr  # nor the store read
    assert not (tmp_path / "f.zarr").exists()


def test_a_refused_extension_does_not_name_the_calibration_as_applied(tmp_path, caplog):
    """The user was told the calibration was being applied, then that the forecast was
    refused (another member count than the store's)."""
    store = two_step_run(tmp_path)
    calibrated = calibrated_checkpoint(tmp_path)
    out = str(tmp_path / "f.zarr")
    options = dict(sampler=SAMPLER, device="cpu", compile=False, progress=False)
    caplog.set_level("INFO", logger="generators.rollout_store")

    forecast_to_store(calibrated, store, INITS[:1], [6.0], 2, out, **options)
    assert caplog.text.count(APPLYING) == 1

    caplog.clear()
    with pytest.raises(StoreError, match="holds 2 members, this forecast 3"):
        forecast_to_store(calibrated, store, INITS[1:], [6.0], 3, out, **options)
    assert APPLYING not in caplog.text


def test_a_far_calibration_is_warned_once_a_forecast_on_the_terminal(tmp_path):
    """A forecast from a checkpoint whose spread factors are far from 1 (5: members that
    barely differ, their noise inflated) said nothing; only the fit and `wxens info` did.
    ``wxens forecast`` of two batches warns once, naming the checkpoint, factor and fix."""
    store = two_step_run(tmp_path)
    calibrated_checkpoint(tmp_path, factor=5.0).save(tmp_path / "far.pt")
    argv = ["forecast", "--checkpoint", str(tmp_path / "far.pt"), "--store", str(store.path)]
    argv += ["--init", "2000-01-08T00", "2000-01-08T06", "--members", "2"]
    argv += ["--lead", "6h", "--batch-members", "2", "--sampler", SAMPLER]
    argv += ["--out", str(tmp_path / "f.zarr"), "--device", "cpu", "--no-progress"]
    said = subprocess.run(
        [sys.executable, "-m", "flows.cli", *argv], capture_output=True, text=True
    )
    assert said.returncode == 0, said.stderr
    far = [line for line in said.stderr.splitlines() if "spread factors far from 1" in line]
    assert len(far) == 1, said.stderr
    assert str(tmp_path / "far.pt") in far[0] and "6 h t2m 5" in far[0]
    assert "train longer" in far[0] and "calibrate=False (--no-calibration)" in far[0]


def test_a_dask_forecast_warns_of_a_far_calibration_on_the_client_once(tmp_path, caplog):
    """Under ``--dask-scheduler`` the tasks are told the client said the warnings: the
    client says this one, once, after the first task passed a worker's checks."""
    from distributed import LocalCluster

    from flows.cli import main

    store = two_step_run(tmp_path)
    calibrated_checkpoint(tmp_path, factor=5.0).save(tmp_path / "far.pt")
    argv = ["forecast", "--checkpoint", str(tmp_path / "far.pt"), "--store", str(store.path)]
    argv += ["--init", "2000-01-08T00", "2000-01-08T06", "--members", "2", "--lead", "6h"]
    argv += ["--batch-members", "2", "--sampler", SAMPLER, "--out", str(tmp_path / "f.zarr")]
    argv += ["--device", "cpu", "--no-progress"]
    logger = logging.getLogger("generators")  # Prefect's logging setup drops root handlers
    logger.addHandler(caplog.handler)
    try:
        with LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster:
            assert main([*argv, "--dask-scheduler", cluster.scheduler_address]) == 0
    finally:
        logger.removeHandler(caplog.handler)
    said = [r.getMessage() for r in dict.fromkeys(caplog.records)]
    far = [m for m in said if "spread factors far from 1" in m]
    assert len(far) == 1 and str(tmp_path / "far.pt") in far[0], said
