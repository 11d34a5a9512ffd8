""":func:`tests.one_process.wxens_commands`, which the read-only tests trust for what a
command printed: each command's output, its logging included, is its own, and a relative
path is read in its own folder."""

from __future__ import annotations

from pathlib import Path

from tests.flows.conftest import SYNTHETIC
from tests.one_process import wxens_commands


def test_each_command_has_its_own_folder_exit_code_output_and_log_lines(tmp_path: Path) -> None:
    ingest = ["ingest", SYNTHETIC, "--variables", "t2m", "--no-progress", "--store"]
    done, unknown, again = wxens_commands([
        ([*ingest, "s.zarr"], tmp_path / "a"),  # made in a: it logs nothing
        (["no-such-command"], tmp_path / "b"),
        ([*ingest, "../a/s.zarr"], tmp_path / "c"),  # the store of a, held: logged
    ])  # fmt: skip
    assert done.returncode == 0 and not done.stderr, done.stderr[-2000:]
    assert done.stdout.startswith("store      s.zarr\n"), done.stdout
    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr, unknown.stderr
    assert "INFO" not in unknown.stderr and not unknown.stdout, unknown
    assert again.returncode == 0, again.stderr[-2000:]
    said = again.stderr.splitlines()
    assert said[0].startswith("INFO pipeline.ingest_report: ../a/s.zarr: 40 of"), said
    assert "invalid choice" not in again.stderr, said
    assert (tmp_path / "a" / "s.zarr").is_dir() and not (tmp_path / "c" / "s.zarr").exists()
