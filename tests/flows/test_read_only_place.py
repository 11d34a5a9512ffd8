"""A forecaster's commands where an administrator shared the store and the run read-only
(:func:`read_only` of the root conftest): what only reads works, what must write there
is refused at once, naming the path and the fix."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from flows.cli import main as wxens
from tests.flows.conftest import SYNTHETIC, TINY_TRAINING
from tests.one_process import wxens_commands


def test_run_with_a_home_it_cannot_write_names_prefect_home_before_any_work(
    tmp_path: Path, read_only
) -> None:
    """``wxens run`` without ``PREFECT_API_URL`` starts Prefect's temporary server, whose
    database lives in ``~/.prefect``. With a home the user cannot write (a service
    account's, a shared one) that server never started: up to 300 s of waiting, then
    thousands of lines of SQLite tracebacks. It is refused before anything starts."""
    home = tmp_path / "home"
    home.mkdir()
    as_user = read_only(home)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"HOME": str(home), "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "5"}
    argv = ["run", "--store", "s.zarr", "--checkpoint", "run", "--init", "2000-01-08T00"]
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", *argv, "--scores", "s.nc", "--out", "f.zarr"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        **as_user,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert str(home / ".prefect") in last and "PREFECT_HOME" in last, last
    assert "Traceback" not in done.stderr


def shared(tiny_model, tmp_path: Path, read_only) -> tuple[Path, Path, Path, dict]:
    """The tiny store, its model and a forecast store of it (2000-01-08T00) copied into
    ``RO``, then made read-only: (store, run, forecast store, keywords to run as the user)."""
    store, model = tiny_model
    ro = tmp_path / "RO"
    shutil.copytree(store, ro / "s.zarr")
    shutil.copytree(model, ro / "run")
    assert wxens([*FORECAST, "--checkpoint", str(ro / "run"), "--store", str(ro / "s.zarr"),
                  "--out", str(ro / "fc.zarr"), "--init", "2000-01-08T00"]) == 0  # fmt: skip
    return ro / "s.zarr", ro / "run", ro / "fc.zarr", read_only(ro)


FORECAST = ["forecast", "--members", "2", "--lead", "6h", "--no-progress"]


def as_user(commands: list[list[str]], tmp_path: Path, keywords: dict) -> list:
    """Each ``wxens argv`` of ``commands`` run as the user in one process (a process each
    spent seconds importing to be refused in one), the ``i``-th in ``tmp_path / "wi"``."""
    folders = [(argv, tmp_path / f"w{i}") for i, argv in enumerate(commands)]
    return wxens_commands(folders, **keywords)


def test_tune_and_calibrate_of_a_read_only_run_are_refused_before_the_store_is_read(
    tiny_model, tmp_path: Path, read_only
) -> None:
    """Tuning writes its forecasts and its choice beside the checkpoint (and each fold),
    calibrating rewrites it: they read the store (tune drew forecasts) before Permission
    denied named a lock file. Refused as the checkpoint is loaded, naming the folder and
    the fix."""
    store, run, _, keywords = shared(tiny_model, tmp_path, read_only)
    mine = tmp_path / "mine"
    shutil.copytree(run, mine)
    for at in [mine, *mine.rglob("*")]:  # the user's own: uid 65534 writes it as root's
        at.chmod(0o777)
    commands = [
        ["tune", "--checkpoint", str(run)],
        ["tune", "--checkpoint", str(mine), "--fold", str(run)],
        ["calibrate", "--checkpoint", str(run), "--start", "2000-01-08"],
    ]
    for done in as_user([[*argv, "--store", str(store)] for argv in commands], tmp_path, keywords):
        assert done.returncode == 2, done.stderr[-2000:]
        last = done.stderr.strip().splitlines()[-1]
        assert str(run) in last and "copy the run" in last, last
        assert "reading" not in done.stderr and "Errno" not in last, done.stderr
    assert "--out" in last


def test_a_forecast_a_read_only_store_holds_already_writes_nothing_and_succeeds(
    tiny_model, tmp_path: Path, read_only
) -> None:
    """Every initial time asked held already: nothing to write, no lock needed, exit 0;
    one more still needs the store's lock: refused before the checkpoint loads, naming the
    store and the fix (it was a bare "Permission denied" once the network was built)."""
    store, run, out, keywords = shared(tiny_model, tmp_path, read_only)
    argv = [*FORECAST, "--checkpoint", str(run), "--store", str(store), "--out", str(out)]
    before = listing(out.parent)
    done, more = as_user(
        [[*argv, "--init", "2000-01-08T00"], [*argv, "--init", "2000-01-08T00", "2000-01-08T06"]],
        tmp_path,
        keywords,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "1 already in the store" in done.stdout
    assert "already holds" not in was_refused(more, out, "--out", before)


def test_compact_of_a_read_only_store_is_refused_naming_it_and_the_fix(
    tiny_model, tmp_path: Path, read_only
) -> None:
    store, _, _, keywords = shared(tiny_model, tmp_path, read_only)
    (done,) = as_user([["compact", str(store)]], tmp_path, keywords)
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert f"{store}: permission denied" in last and "owner" in last, last


def listing(folder: Path) -> list[tuple[str, int]]:
    """Every path below ``folder`` with its size: what a refusal must leave as it was."""
    return sorted((str(p), p.lstat().st_size) for p in folder.rglob("*"))


def refused(commands: list[tuple[list[str], Path, str]], tmp_path: Path, keywords) -> list[str]:
    """Each ``(argv, path, flag)``: ``wxens argv`` run as the user (all in one process,
    :func:`as_user`) is :func:`was_refused`, naming ``path`` and another ``flag``; their
    stderr."""
    before = [listing(path.parent) for _, path, _ in commands]
    done = as_user([argv for argv, _, _ in commands], tmp_path, keywords)
    return [
        was_refused(one, path, flag, listed)
        for one, (_, path, flag), listed in zip(done, commands, before, strict=True)
    ]


def was_refused(done: subprocess.CompletedProcess, path: Path, flag: str, before: list) -> str:
    """``done`` was refused (2), its last line naming ``path`` and the fix, another ``flag``,
    in words rather than an errno; nothing written below ``path.parent`` (listed ``before``
    it ran): its stderr."""
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert f"{path}: permission denied" in last and f"another {flag}" in last, last
    assert "Errno" not in done.stderr and listing(path.parent) == before, done.stderr[-2000:]
    return done.stderr


def test_ingest_and_bias_correct_into_a_read_only_place_are_refused_before_reading(
    tiny_model, tmp_path: Path, read_only
) -> None:
    """They read every input, then failed on the store's claim or lock file with
    [Errno 13] and the CLI's generic line. Refused first, naming the store and the fix."""
    store, _, forecast, keywords = shared(tiny_model, tmp_path, read_only)
    new, out = store.parent / "new.zarr", store.parent / "corrected.zarr"
    ingest = ["ingest", SYNTHETIC, "--store", str(new), "--no-progress"]
    correct = ["bias-correct", str(forecast), "--truth", str(store), "--out", str(out)]
    correct += ["--bias-weight", "0.5"]
    _, stderr = refused([(ingest, new, "--store"), (correct, out, "--out")], tmp_path, keywords)
    assert "INFO" not in stderr  # nothing read: no forecast store opened, none created


def test_a_run_into_a_read_only_store_is_refused_before_prefect_starts(
    tiny_model, tmp_path: Path, read_only
) -> None:
    """``wxens run`` started Prefect, then ingested (or even ingested all, then failed on
    the forecast store) before [Errno 13] under pages of flow logs. Its stores to write,
    the analysis store with --source and --out, are refused before any flow starts."""
    store, run, forecast, keywords = shared(tiny_model, tmp_path, read_only)
    argv = ["run", "--checkpoint", str(run), "--init", "2000-01-08T06", "--members", "2"]
    argv += ["--scores", str(tmp_path / "s.nc")]
    new, mine = store.parent / "new.zarr", tmp_path / "mine.zarr"
    corrected = store.parent / "corrected.zarr"
    baseline = ["--baseline", "persistence", "--baseline-train", "2000-01-01/2000-01-07"]
    saids = refused(
        [
            ([*argv, "--source", SYNTHETIC, "--store", str(new), "--out", str(mine)], new,
             "--store"),
            ([*argv, "--source", SYNTHETIC, "--store", str(mine), "--out", str(forecast)],
             forecast, "--out"),
            ([*argv, "--store", str(store), "--out", str(mine), "--bias-correct", str(corrected),
              "--bias-weight", "0.5"], corrected, "--bias-correct"),
            ([*argv, "--store", str(store), "--out", str(mine), *baseline, "--baseline-store",
              str(corrected)], corrected, "--baseline-store"),
            # tuned to no correction, a run writes no corrected store: the --out it writes is
            # refused
            ([*argv, "--store", str(store), "--out", str(forecast), "--bias-correct",
              str(corrected)], forecast, "--out"),
        ],
        tmp_path,
        keywords,
    )  # fmt: skip
    assert "Flow run" not in saids[0] and "Flow run" not in saids[1]
    assert not mine.exists()  # not ingested first


def test_a_train_into_a_read_only_place_is_refused_before_the_store_is_read(
    tiny_model, tmp_path: Path, read_only
) -> None:
    """A new run beside a read-only one, or training on into the read-only run, failed on
    the lock file beside it: [Errno 13] and the CLI's generic line, which said neither the
    run nor --out. Refused first, naming the run and the fix."""
    store, run, _, keywords = shared(tiny_model, tmp_path, read_only)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY_TRAINING))
    argv = ["train", "--store", str(store), "--config", str(config), "--no-progress"]
    outs = [run.parent / "new", run]
    for said in refused([([*argv, "--out", str(out)], out, "--out") for out in outs], tmp_path,
                        keywords):  # fmt: skip
        assert "INFO" not in said, said
