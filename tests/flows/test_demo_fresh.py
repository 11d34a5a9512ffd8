"""``wxens demo``'s work directory: ``--fresh`` deletes only a demo's own, and a rerun
for other training days is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.cli import main
from flows.commands.demo import SAMPLE, check_demo_workdir, derived_config
from pipeline.errors import InputError
from pipeline.store import ingest


def test_fresh_refuses_a_folder_the_demo_did_not_write(tmp_path, capsys):
    workdir = tmp_path / "thesis"
    workdir.mkdir()
    (workdir / "chapter1.tex").write_text("keep me")
    (workdir / "scores.nc").write_bytes(b"")  # a demo output beside it does not excuse it
    code = main(["demo", "--workdir", str(workdir), "--fresh"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "chapter1.tex" in err and str(workdir) in err
    assert (workdir / "chapter1.tex").read_text() == "keep me"
    assert sorted(p.name for p in workdir.iterdir()) == ["chapter1.tex", "scores.nc"]


def test_fresh_accepts_a_finished_demo_with_the_lock_files_of_its_stores(tmp_path):
    workdir = tmp_path / "demo"
    workdir.mkdir()
    for name in ("scores.nc", "forecast.zarr", ".forecast.zarr.lock", ".era5-uk.zarr.lock"):
        (workdir / name).write_bytes(b"")
    check_demo_workdir(workdir)  # all the demo's: --fresh may delete them
    (workdir / ".thesis.tex.lock").write_bytes(b"")
    with pytest.raises(InputError, match=r"\.thesis\.tex\.lock"):
        check_demo_workdir(workdir)


def test_fresh_refuses_a_regular_file(tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    assert main(["demo", "--workdir", str(target), "--fresh"]) == 2
    assert "is a file; give a folder" in capsys.readouterr().err and target.read_text() == "keep me"


def test_rerun_with_another_train_end_is_refused(tmp_path):
    """A work directory keeps the config (and model) of its first run: a rerun for other
    training days says so, rather than reusing a model trained on the wrong ones."""
    store = tmp_path / "era5-uk.zarr"
    ingest(SAMPLE, store, progress=False)
    path = derived_config(str(store), tmp_path, "2019-03-16", None)
    kept = Path(path).read_text()
    assert derived_config(str(store), tmp_path, "2019-03-16", None) == path
    with pytest.raises(
        InputError, match=r"trained to 2019-03-16 .* not to --train-end 2019-03-21; pass --fresh"
    ):
        derived_config(str(store), tmp_path, "2019-03-21", None)
    assert Path(path).read_text() == kept


def test_rerun_with_a_train_end_after_the_sample_is_kept(tmp_path):
    """Training days past the sample's end: the config ends at its last time, and a rerun
    with the same --train-end reuses it."""
    store = tmp_path / "era5-uk.zarr"
    ingest(SAMPLE, store, progress=False)
    path = derived_config(str(store), tmp_path, "2019-04-15", None)
    assert derived_config(str(store), tmp_path, "2019-04-15", None) == path


def test_a_step_count_given_sizes_the_warm_up_and_cadences_of_the_demo(tmp_path):
    """`wxens demo --set steps=40` trained 40 steps of a config derived for the demo's
    steps: warm-up and validation cadence longer than the run itself."""
    from generators.config import load_train_config
    from generators.config_derive import with_steps

    store = tmp_path / "era5-uk.zarr"
    ingest(SAMPLE, store, progress=False)
    config = load_train_config(
        derived_config(str(store), tmp_path, "2019-03-16", None, ["steps=40"])
    )
    assert config == with_steps(config, 40)
    assert config.steps == 40 and config.validate_every <= 40 and config.optim.warmup_steps <= 40
