"""The forecast flow's options reach the library: ``batch_members`` and ``compile`` go from
the flow to its task and from the task into :func:`forecast_to_store`.

Spies stand in for the task and the library call, so no Prefect server, checkpoint or
store is needed; a dropped or renamed option fails the assertions.
"""

from __future__ import annotations

import types

import pandas as pd

from flows import pipelines, tasks

INITS = ["2019-03-22T00:00:00", "2019-03-22T06:00:00", "2019-03-22T12:00:00"]


def test_the_forecast_flow_passes_batch_members_and_compile_to_its_tasks(tmp_path, monkeypatch):
    calls = []

    def spy_unless_done(task_, done):
        assert task_ is tasks.forecast_init_times

        def run(*args, **kwargs):
            calls.append((args, kwargs))
            return list(args[2])

        return run

    monkeypatch.setattr(pipelines, "unless_done", spy_unless_done)
    pipelines.forecast.fn(
        checkpoint="k.pt",
        store="analysis.zarr",
        init_times=INITS,
        out=str(tmp_path / "absent.zarr"),
        leads_hours=[6.0],
        members=2,
        batch_members=4,
        compile=False,
    )
    assert [len(args[2]) for args, _ in calls] == [2, 1]  # batch_members // members per task
    assert all(kw["batch_members"] == 4 and kw["compile"] is False for _, kw in calls)


def test_the_forecast_task_passes_batch_members_and_compile_to_the_library(monkeypatch):
    import generators.rollout_store

    seen = {}

    def spy_forecast_to_store(checkpoint, store, inits, leads_hours, n_members, out, **kwargs):
        seen.update(kwargs)
        return types.SimpleNamespace(init_times=tuple(pd.DatetimeIndex(inits)))

    monkeypatch.setattr(generators.rollout_store, "forecast_to_store", spy_forecast_to_store)
    written = tasks.forecast_init_times.fn(
        "k.pt",
        "analysis.zarr",
        INITS,
        [6.0],
        2,
        "out.zarr",
        None,
        0,
        True,
        "cpu",
        False,
        batch_members=6,
        compile=False,
    )
    assert written == INITS
    assert seen["batch_members"] == 6 and seen["compile"] is False
