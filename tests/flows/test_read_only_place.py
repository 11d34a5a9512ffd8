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


def as_user(argv: list[str], cwd: Path, keywords: dict) -> subprocess.CompletedProcess:
    cwd.mkdir(mode=0o777)
    cwd.chmod(0o777)  # uid 65534's working directory
    cwd.parent.chmod(0o755)
    run = [sys.executable, "-m", "flows.cli", *argv]
    return subprocess.run(run, cwd=cwd, capture_output=True, text=True, timeout=300, **keywords)


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
    for i, (argv, folder) in enumerate([
        (["tune", "--checkpoint", str(run)], run),
        (["tune", "--checkpoint", str(mine), "--fold", str(run)], run),
        (["calibrate", "--checkpoint", str(run), "--start", "2000-01-08"], run),
    ]):  # fmt: skip
        done = as_user([*argv, "--store", str(store)], tmp_path / f"w{i}", keywords)
        assert done.returncode == 2, done.stderr[-2000:]
        last = done.stderr.strip().splitlines()[-1]
        assert str(folder) in last and "copy the run" in last, last
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
    done = as_user([*argv, "--init", "2000-01-08T00"], tmp_path / "w0", keywords)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "1 already in the store" in done.stdout
    argv += ["--init", "2000-01-08T00", "2000-01-08T06"]
    assert "already holds" not in refused(argv, tmp_path / "w1", keywords, out, "--out")


def test_compact_of_a_read_only_store_is_refused_naming_it_and_the_fix(
    tiny_model, tmp_path: Path, read_only
) -> None:
    store, _, _, keywords = shared(tiny_model, tmp_path, read_only)
    done = as_user(["compact", str(store)], tmp_path / "w", keywords)
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert f"{store}: permission denied" in last and "owner" in last, last


def listing(folder: Path) -> list[tuple[str, int]]:
    """Every path below ``folder`` with its size: what a refusal must leave as it was."""
    return sorted((str(p), p.lstat().st_size) for p in folder.rglob("*"))


def refused(argv: list[str], cwd: Path, keywords: dict, path: Path, flag: str) -> str:
    """The last line of ``wxens argv`` run as the user: refused (2), naming ``path`` and
    the fix, another ``flag``, in words rather than an errno; nothing written below."""
    before = listing(path.parent)
    done = as_user(argv, cwd, keywords)
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
    argv = ["ingest", SYNTHETIC, "--store", str(store.parent / "new.zarr"), "--no-progress"]
    refused(argv, tmp_path / "w0", keywords, store.parent / "new.zarr", "--store")
    out = store.parent / "corrected.zarr"
    argv = ["bias-correct", str(forecast), "--truth", str(store), "--out", str(out)]
    stderr = refused([*argv, "--bias-weight", "0.5"], tmp_path / "w1", keywords, out, "--out")
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
    into = [*argv, "--source", SYNTHETIC, "--store", str(new), "--out", str(mine)]
    assert "Flow run" not in refused(into, tmp_path / "w0", keywords, new, "--store")
    into = [*argv, "--source", SYNTHETIC, "--store", str(mine), "--out", str(forecast)]
    assert "Flow run" not in refused(into, tmp_path / "w1", keywords, forecast, "--out")
    assert not mine.exists()  # not ingested first
    into = [*argv, "--store", str(store), "--out", str(mine), "--bias-correct"]
    new = store.parent / "corrected.zarr"
    refused(
        [*into, str(new), "--bias-weight", "0.5"], tmp_path / "w2", keywords, new, "--bias-correct"
    )
    into = [*argv, "--store", str(store), "--out", str(mine), "--baseline", "persistence"]
    into += ["--baseline-train", "2000-01-01/2000-01-07", "--baseline-store", str(new)]
    refused(into, tmp_path / "w3", keywords, new, "--baseline-store")
    # tuned to no correction, a run writes no corrected store: the --out it writes is refused
    into = [*argv, "--store", str(store), "--out", str(forecast), "--bias-correct", str(new)]
    refused(into, tmp_path / "w4", keywords, forecast, "--out")


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
    for i, out in enumerate([run.parent / "new", run]):
        said = refused([*argv, "--out", str(out)], tmp_path / f"w{i}", keywords, out, "--out")
        assert "INFO" not in said, said
