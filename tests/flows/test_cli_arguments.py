"""Arguments the CLI refuses up front, with exit 2 and one line that names the value and the
fix, before any store or checkpoint is opened (each test points at a store and checkpoint
that do not exist: an argument checked after them would report those instead); and a
stdout closed early (``wxens info STORE | head``), which ends the command quietly."""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import sys

import pandas as pd
import pytest

from flows.cli import STDOUT_CLOSED, OneRecordPerWxensError, main
from flows.commands.forecast import parse_inits
from flows.inputs import check_output_file
from generators.correction.tuned import checkpoint_digest
from pipeline.errors import InputError, StoreError
from pipeline.store import ingest

TIMES = ["--lead", "6h", "--members", "2"]
COMMANDS = {
    "forecast": ["forecast", "--checkpoint", "nowhere.pt", "--store", "nowhere.zarr", *TIMES],
    "baseline": [
        "baseline",
        "climatology",
        "--store",
        "nowhere.zarr",
        "--train",
        "2000-01-01/2000-01-05",
        *TIMES,
    ],
    "run": ["run", "--store", "nowhere.zarr", "--checkpoint", "nowhere.pt", "--scores", "s.nc"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("every", ["0h", "-6h"])
def test_an_init_range_whose_step_is_not_positive_exits_2(
    command, every, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    value = f"2000-01-01/2000-01-02/{every}"
    assert main([*COMMANDS[command], "--init", value, "--out", "f.zarr"]) == 2
    err = capsys.readouterr().err
    assert f"--init '{value}': EVERY must be positive, got '{every}'" in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_reversed_init_range_exits_2_naming_both_ends(command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    value = "2001-10-10/2001-10-01/1D"
    assert main([*COMMANDS[command], "--init", value, "--out", "f.zarr"]) == 2
    err = capsys.readouterr().err
    assert f"--init '{value}' starts (2001-10-10) after it ends (2001-10-01)" in err
    assert list(tmp_path.iterdir()) == []


def test_initial_times_with_a_zone_are_taken_in_utc():
    got = parse_inits(["2000-01-01T00Z/2000-01-01T12/6h", "2000-01-02T01:00+01:00"])
    want = ["2000-01-01T00", "2000-01-01T06", "2000-01-01T12", "2000-01-02T00"]
    assert list(got) == [pd.Timestamp(t) for t in want]


def test_init_ranges_include_both_ends_and_merge_with_single_times():
    got = parse_inits(["2000-01-01/2000-01-02/12h", "2000-01-01T12", "2000-01-03/2000-01-03/6h"])
    want = ["2000-01-01T00", "2000-01-01T12", "2000-01-02T00", "2000-01-03T00"]
    assert list(got) == [pd.Timestamp(t) for t in want]


@pytest.mark.parametrize("value", ["2000-01-01//6h", "2000-01-01/2000-01-02/", "2000-01-01/x/6h"])
def test_an_init_range_with_a_missing_or_bad_part_is_an_input_error(value):
    with pytest.raises(InputError, match="is neither a time"):
        parse_inits([value])


@pytest.mark.parametrize("value", ["2020-02-27/2020-03-01", "2020-02-27/2020-03-01/6h/1"])
def test_an_init_range_of_two_or_four_parts_says_a_range_has_three(value):
    # START/END without EVERY read "not enough values to unpack (expected 3, got 2)"
    with pytest.raises(InputError, match=r"a range has three parts, START/END/EVERY \(e\.g\."):
        parse_inits([value])


@pytest.mark.parametrize(
    ("argv", "flag", "example"),
    [
        (
            ["verify", "nowhere.zarr", "--truth", "nowhere.zarr", "--out", "{dir}"],
            "--out",
            "scores.nc",
        ),
        (
            ["verify", "nowhere.zarr", "--truth", "nowhere.zarr", "--out", "s.nc"]
            + ["--report", "{dir}"],
            "--report",
            "report.html",
        ),
        (COMMANDS["run"][:-2] + ["--out", "f.zarr", "--scores", "{dir}"], "--scores", "scores.nc"),
        (COMMANDS["run"] + ["--out", "f.zarr", "--report", "{dir}"], "--report", "report.html"),
    ],
)
def test_a_directory_given_for_an_output_file_exits_2_before_any_work(
    argv, flag, example, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "somedir").mkdir()
    assert main([a.format(dir="somedir") for a in argv]) == 2
    err = capsys.readouterr().err
    assert f"{flag} somedir is a directory; give a file path such as somedir/{example}" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["somedir"]


@pytest.mark.parametrize("out", ["afile", "afile/run"])
def test_a_file_given_for_the_training_directory_exits_2_before_any_work(
    out, tmp_path, monkeypatch, capsys
):
    # `wxens train --out afile` loaded the store and built the model, then ended in a
    # FileExistsError traceback when it made the directory.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("mine")
    assert main(["train", "--store", "nowhere.zarr", "--out", out]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "afile is a file, not a directory" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
    assert (tmp_path / "afile").read_text() == "mine"


def test_an_output_file_below_a_regular_file_is_refused(tmp_path):
    (tmp_path / "afile").write_text("")
    with pytest.raises(InputError, match="afile is a file, not a directory"):
        check_output_file(str(tmp_path / "afile" / "sub" / "s.nc"), "--out", "scores.nc")
    check_output_file(str(tmp_path / "new" / "sub" / "s.nc"), "--out", "scores.nc")
    check_output_file(None, "--report", "report.html")
    assert not (tmp_path / "new").exists()  # a check only: the writer makes the folders


def test_an_output_file_in_a_directory_that_cannot_be_written_is_refused(tmp_path, monkeypatch):
    """Found before any work: it failed only when the scores were written, minutes later,
    with a traceback. (As root every directory is writable: access() is stood in for.)"""
    import flows.inputs

    writable = os.access
    monkeypatch.setattr(
        flows.inputs.os, "access", lambda p, mode: p != tmp_path and writable(p, mode)
    )
    with pytest.raises(InputError, match="cannot be written .* a directory you can write"):
        check_output_file(str(tmp_path / "sub" / "s.nc"), "--scores", "scores.nc")
    check_output_file(str(tmp_path.parent / "s.nc"), "--scores", "scores.nc")


@pytest.mark.parametrize(
    ("number", "fix"),
    [
        (errno.EROFS, "read-only: write somewhere else"),
        (errno.ENOSPC, "the disk is full"),
        (errno.EACCES, "permission denied"),
    ],
)
def test_a_write_the_machine_refuses_exits_2_with_one_line(number, fix, monkeypatch, capsys):
    """A read-only or full disk is the machine's answer, not a wxens bug: one line naming
    the file and the fix, exit 2; it was a traceback and exit 1."""
    import flows.commands.info

    def refuse(args):
        raise OSError(number, os.strerror(number), "/data/.s.nc.tmp")

    monkeypatch.setattr(flows.commands.info, "run", refuse)
    assert main(["info", "x.zarr"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wxens info: error: [Errno") and "'/data/.s.nc.tmp'" in err
    assert fix in err and "Traceback" not in err and err.count("\n") == 1


def test_an_oserror_that_is_not_the_machines_refusal_keeps_its_traceback(monkeypatch):
    import flows.commands.info

    def fail(args):
        raise OSError(errno.EBADF, "Bad file descriptor")

    monkeypatch.setattr(flows.commands.info, "run", fail)
    with pytest.raises(OSError, match="Bad file descriptor"):
        main(["info", "x.zarr"])


def test_scores_and_report_naming_one_file_exit_2_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    verify = ["verify", "nowhere.zarr", "--truth", "nowhere.zarr", "--out", "x.nc"]
    assert main([*verify, "--report", "./x.nc"]) == 2
    assert "--out and --report both name ./x.nc; give each its own file" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_an_output_naming_an_input_exits_2_and_leaves_the_input(tmp_path, monkeypatch, capsys):
    """`wxens verify fc.nc --truth s.zarr --out fc.nc` replaced the forecast by its scores."""
    monkeypatch.chdir(tmp_path)
    for name in ("fc_1.nc", "ref.nc"):
        (tmp_path / name).write_bytes(b"a forecast")
    verify = ["verify", "fc_*.nc", "--truth", "s.zarr", "--reference", "ref.nc"]
    for out, given in (("--out", "fc_1.nc"), ("--report", "./ref.nc"), ("--out", "s.zarr")):
        assert main([*verify, "--out", "x.nc", out, given]) == 2
        err = capsys.readouterr().err
        assert f"{out} {given} is what " in err and "would replace it" in err, err
    assert (tmp_path / "fc_1.nc").read_bytes() == (tmp_path / "ref.nc").read_bytes()
    # inside a store's folder: written among its files, deleted by its next replacement
    (tmp_path / "s.zarr").mkdir()
    assert main([*verify, "--out", "s.zarr/scores.nc"]) == 2
    assert "--out s.zarr/scores.nc lies inside" in capsys.readouterr().err
    assert list((tmp_path / "s.zarr").iterdir()) == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--baseline", "persistence", "--baseline-train", "2000-01-01/2000-01-05"]
            + ["--baseline-store", "./f.zarr"],
            "--out and --baseline-store both name ./f.zarr; give each its own store",
        ),
        (["--bias-correct", "f.zarr"], "--out and --bias-correct both name f.zarr"),
        (["--bias-correct", "nowhere.zarr"], "--store and --bias-correct both name nowhere.zarr"),
    ],
)
def test_a_run_writing_two_outputs_into_one_store_exits_2_before_any_work(
    extra, message, tmp_path, monkeypatch, capsys
):
    """A baseline drawn into the forecast store was verified as its own reference (skill
    0, exit 0); a correction into it failed only after the forecasts, naming --out."""
    monkeypatch.chdir(tmp_path)
    assert main([*COMMANDS["run"], "--out", "f.zarr", *extra]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_info_into_a_closed_pipe_ends_quietly(tmp_path):
    """``wxens info STORE | head -1``, where head has already gone: no BrokenPipeError."""
    store = ingest(
        "synthetic:n_lat=4,n_lon=5,n_times=8,step=6h",
        tmp_path / "s.zarr",
        variables=["t2m"],
        progress=False,
    )
    read, write = os.pipe()
    os.close(read)  # the reader is gone before wxens writes a line
    try:
        done = subprocess.run(
            [sys.executable, "-m", "flows.cli", "info", str(store.path)],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write)
    assert done.returncode == STDOUT_CLOSED == 141
    assert done.stderr == ""


def test_a_broken_pipe_that_is_not_stdout_keeps_its_traceback(monkeypatch):
    import flows.commands.info

    def broken(args):
        raise BrokenPipeError(32, "Broken pipe")  # a subprocess's or a socket's, say

    monkeypatch.setattr(flows.commands.info, "run", broken)
    with pytest.raises(BrokenPipeError):
        main(["info", "s.zarr"])


def test_leads_are_whole_steps_of_the_store():
    """A lead off the store's step is named with the step (it suggested --every, which then
    failed deeper down with 'no training time fits' for a baseline)."""
    from flows.commands.forecast import parse_leads

    assert parse_leads("24h", None, 6.0) == [6.0, 12.0, 18.0, 24.0]
    assert parse_leads("2d", "12h", 6.0) == [12.0, 24.0, 36.0, 48.0]
    assert parse_leads("1h,3h,6h", None, 1.0) == [1.0, 3.0, 6.0]
    with pytest.raises(InputError, match=r"--lead 36h: 36 h not whole steps of the store's 24 h"):
        parse_leads("36h", None, 24.0)
    with pytest.raises(
        InputError, match=r"--every 12h: 12 h, 36 h not whole steps of the store's 24"
    ):
        parse_leads("36h", "12h", 24.0)
    with pytest.raises(InputError, match="not a multiple of --every 6h"):
        parse_leads("25h", "6h", 6.0)
    with pytest.raises(InputError, match=r"1 h, 3 h not whole steps of the store's 6 h"):
        parse_leads("1h,3h", None, 6.0)


def test_every_with_a_comma_list_of_leads_is_refused():
    """``--every`` spaces the leads up to a single ``--lead``: beside a comma list it was
    ignored without a word (``--lead 6h,12h --every 3h`` drew 6 and 12 h only), and a bad
    lead's error named ``--every None`` when no --every was given."""
    from flows.commands.forecast import parse_leads

    with pytest.raises(InputError, match=r"--every 3h goes with a single --lead"):
        parse_leads("6h,12h", "3h", 1.0)
    with pytest.raises(InputError) as error:
        parse_leads("6h,banana", None, 1.0)
    assert "--every" not in str(error.value)


def test_info_on_a_torn_training_run_says_what_it_is(tmp_path, capsys):
    """A run directory or its checkpoint is not a store: an unreadable one is said to be an
    unreadable checkpoint, not 'no Zarr store there'."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"")
    for target in (run, run / "last.pt"):
        assert main(["info", str(target)]) == 2
        assert "is not a readable wxens checkpoint" in capsys.readouterr().err


def test_info_on_a_training_run_tells_what_it_was_trained_on(tmp_path, capsys):
    """Several runs on several stores: info on a run gives what a store must match to
    forecast with it, and the digest its forecast stores record."""
    store = ingest(
        "synthetic:n_lat=8,n_lon=12,n_times=24,step=6h,seed=3",
        tmp_path / "syn.zarr",
        variables=["t2m"],
        progress=False,
    )
    config = tmp_path / "c.yaml"
    config.write_text(
        "model: {kind: flow_matching, backbone: {widths: [8, 16], attention_heads: 0, "
        "embedding_dim: 16}}\n"
        "data: {channels: [t2m], history: 2, leads: [1], train: {end: 2000-01-04}}\n"
        "steps: 2\nbatch_size: 4\ndevice: cpu\n"
    )
    run = tmp_path / "run"
    argv = ["train", "--store", str(store.path), "--config", str(config), "--out", str(run)]
    assert main([*argv, "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["info", str(run)]) == 0
    out = capsys.readouterr().out
    digest = checkpoint_digest(run)
    mean = float(store.statistics["t2m"].sel(statistic="mean"))
    for told in (
        f"digest {digest}",
        "flow_matching, backbone unet, step 2 of 2",
        "grid       8 x 12",
        "step       6 h, history 2 states",
        "leads 6 h",
        f"t2m (mean {mean:.4g}",
        "train (start) .. 2000-01-04",
    ):
        assert told in out, (told, out)
    # a choice tuned before the checkpoint changed: info warned and left the line out
    from generators.correction.spec import CorrectionSpec
    from generators.correction.tuned import save_tuned

    save_tuned(run, CorrectionSpec(0.2), {}, digest="0123456789abcdef")
    assert main(["info", str(run)]) == 0
    captured = capsys.readouterr()
    assert "bias weight 0.2, tuned for the checkpoint 0123456789abcdef" in captured.out
    assert "run `wxens tune` for this one" in captured.out and not captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["forecast", "--members", "0"], "argument --members: must be at least 1, got 0"),
        (["run", "--members", "-3"], "argument --members: must be at least 1, got -3"),
        (["run", "--latest", "0"], "argument --latest: must be at least 1, got 0"),
        (["tune", "--members", "1"], "argument --members: must be at least 2, got 1"),
        (["demo", "--members", "1"], "argument --members: must be at least 2, got 1"),
        (["train", "--threads", "0"], "argument --threads: must be at least 1, got 0"),
        (["verify", "--physics-init-times", "-1"], "must be at least 0, got -1"),
        (["forecast", "--members", "2.5"], "argument --members: '2.5' is not a whole number"),
    ],
)
def test_a_count_out_of_range_is_refused_by_the_parser(argv, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_prefect_logs_a_wxens_error_of_nested_runs_once():
    """wxens run on a store of another grid logged the refusal five times (the task's failed
    state, then each flow's exception and failed state) before the CLI's line; now the first
    flow's exception alone, and any other failure as Prefect logs it."""
    error = InputError("big.zarr differs in: grid")

    def record(message: str, exc: BaseException | None = None) -> logging.LogRecord:
        info = (type(exc), exc, None) if exc else None
        return logging.LogRecord("prefect.flow_runs", logging.ERROR, "", 0, message, (), info)

    once = OneRecordPerWxensError()
    kept = [
        once.filter(r)
        for r in (
            record(
                f"Finished in state Failed('Task run encountered an exception InputError: {error}')"
            ),
            record(f"Encountered exception during execution: {error!r}", error),
            record(
                "Finished in state Failed('Flow run encountered an exception: "
                f"InputError: {error}')"
            ),
            record(f"Encountered exception during execution: {error!r}", error),
            record("Finished in state Failed('Flow run encountered an exception: StoreError: x')"),
            record("Finished in state Failed('Flow run encountered an exception: KeyError: x')"),
            record(
                "Encountered exception during execution: StoreError('gone')", StoreError("gone")
            ),
        )
    ]
    assert kept == [False, True, False, False, False, True, True]


def test_info_reads_a_checkpoint_file_of_any_name(tmp_path, capsys):
    # `wxens calibrate --out runs/uk_cal` writes a checkpoint file without .pt, which
    # `wxens forecast --checkpoint` takes but `wxens info` called "not a Zarr store".
    import torch

    torch.save({"format": "an old one"}, tmp_path / "uk_cal")
    assert main(["info", str(tmp_path / "uk_cal")]) == 2
    err = capsys.readouterr().err
    assert "is not a wxens checkpoint of format" in err and "Zarr" not in err
    (tmp_path / "notes.txt").write_text("not a store")
    assert main(["info", str(tmp_path / "notes.txt")]) == 2
    assert "not a Zarr store" in capsys.readouterr().err


def test_info_describes_a_scores_file_rather_than_asking_to_ingest_it(tmp_path, capsys):
    """A scores file (``wxens verify --out``, an older wxens's too: the same NetCDF groups)
    is described, not taken for analyses to ingest into a store."""
    import numpy as np
    import xarray as xr

    from verification.output import write_scores

    scorecard = xr.Dataset({"fair_crps": (("lead_time",), np.array([0.16, 0.39]))})
    tree = xr.DataTree.from_dict({"/": xr.Dataset(), "/scorecard": scorecard})
    tree.attrs.update(
        n_members=8, n_init_times=5, wxens_generator="flow_matching",
        wxens_checkpoint_digest="b69a2674c05aec69", wxens_sampler="euler:nfe=2",
    )  # fmt: skip
    path = write_scores(tree, tmp_path / "scores.nc")
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "8 members, 5 initial times" in out and "b69a2674c05aec69" in out
    assert "scorecard" in out and "ingest" not in out
