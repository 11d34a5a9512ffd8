"""Task results persist as plain JSON, and a result file that is anything else (a pickle
dropped where a result lives) is never loaded: the task runs again and no code runs."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from prefect import flow
from prefect.serializers import PickleSerializer

from flows.runtime import RESULTS_DIR, wxens_task

CALLS: list[list[str]] = []
MARKER = "pickle-ran"


class Payload:
    """Unpickling this creates the file :data:`MARKER` in the working directory."""

    def __reduce__(self):
        return (open, (MARKER, "w"))


@wxens_task(name="shout", reads=())
def shout(words: list[str]) -> list[str]:
    CALLS.append(list(words))
    return [w.upper() for w in words]


@flow(name="shout-flow")
def shout_flow(words: list[str]) -> list[str]:
    return shout(words)


def pickle_record(json_record: bytes) -> bytes:
    """The JSON record with its serializer swapped for pickle and its value a pickle."""
    record = json.loads(json_record)
    serializer = PickleSerializer(picklelib="cloudpickle")
    record["metadata"]["serializer"] = serializer.model_dump(mode="json")
    record["result"] = serializer.dumps(Payload()).decode()
    return json.dumps(record).encode()


@pytest.mark.parametrize(
    "craft",
    [pickle_record, lambda _record: pickle.dumps(Payload())],
    ids=["record-naming-pickle", "raw-pickle"],
)
def test_results_are_json_and_a_pickle_is_never_loaded(
    prefect_server, tmp_path, monkeypatch, craft
):
    monkeypatch.chdir(tmp_path)
    CALLS.clear()
    assert shout_flow(["a", "b"]) == ["A", "B"]
    (stored,) = (tmp_path / RESULTS_DIR).iterdir()
    record = json.loads(stored.read_bytes())  # JSON, not a pickle
    assert record["metadata"]["serializer"]["type"] == "json"
    assert json.loads(record["result"]) == ["A", "B"]
    assert shout_flow(["a", "b"]) == ["A", "B"] and len(CALLS) == 1, "cached rerun skipped"

    stored.write_bytes(craft(stored.read_bytes()))
    assert shout_flow(["a", "b"]) == ["A", "B"]
    assert not (tmp_path / MARKER).exists(), "the pickle was loaded"
    assert len(CALLS) == 2, "the task ran again instead of trusting the replaced file"
    assert json.loads(json.loads(stored.read_bytes())["result"]) == ["A", "B"]
    assert shout_flow(["a", "b"]) == ["A", "B"] and len(CALLS) == 2, "cached again"
    assert not Path(MARKER).exists()


@pytest.mark.slow
def test_a_verify_rerun_rewrites_scores_that_another_forecast_replaced(
    prefect_server, dask_scheduler, tmp_path, monkeypatch
):
    """Forecast A verified into s.nc, then forecast B into the same s.nc, then A again:
    the third run skipped as done (its inputs unchanged, s.nc there) and left B's scores
    under A's name. Verified on the session's cluster (a new ``LocalCluster`` for each run
    is not what this is about)."""
    import pandas as pd
    import xarray as xr

    from flows.pipelines import verify
    from generators.correction.baseline_store import baseline_to_store
    from generators.correction.baselines import BaselineConfig
    from pipeline.store import ingest

    monkeypatch.chdir(tmp_path)
    synthetic = "synthetic:n_lat=4,n_lon=6,n_times=20,step=6h,seed=2"
    ingest(synthetic, "truth.zarr", variables=["t2m"], progress=False)
    config = BaselineConfig("2000-01-01", "2000-01-03", members=4)
    inits = pd.date_range("2000-01-04", periods=2, freq="6h")
    for name in ("persistence", "climatology"):
        baseline_to_store(name, "truth.zarr", config, inits, [6.0], f"{name}.zarr", progress=False)

    def crps() -> float:
        with xr.open_datatree("s.nc") as tree:
            return float(tree["scorecard"].to_dataset().fair_crps.sum())

    on = {"dask_scheduler": dask_scheduler}
    verify("persistence.zarr", "truth.zarr", "s.nc", **on)
    persistence = crps()
    verify("climatology.zarr", "truth.zarr", "s.nc", **on)
    assert crps() != persistence
    verify("persistence.zarr", "truth.zarr", "s.nc", **on)
    assert crps() == pytest.approx(persistence, rel=1e-12)  # rewritten: dask's sum order
    mtime = Path("s.nc").stat().st_mtime_ns
    verify("persistence.zarr", "truth.zarr", "s.nc", **on)  # unchanged: still skipped
    assert Path("s.nc").stat().st_mtime_ns == mtime
