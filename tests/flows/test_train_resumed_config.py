"""``wxens train --config FILE`` resumed into an ``--out`` whose checkpoint trained other
values of what a resumed run keeps: told where each value came from and the fix."""

from __future__ import annotations

from flows.cli import main as wxens
from generators.checkpoint import load_checkpoint
from tests.generators.tiny import two_step_run


def test_a_resumed_config_run_names_the_file_and_the_set_to_change(tmp_path, capsys):
    """A run of ``c.yaml`` (history 2, seed 0), resumed with the file edited to history 3
    and ``--set seed=7``, was told the run "holds a run with another 'data' (data.history:
    2 there, 3 in this config)": not the seed, nor where either came from, nor that putting
    2 back in the file resumes it. Each key is named with its source and fix, taken here."""
    store = two_step_run(tmp_path)
    config = tmp_path / "c.yaml"
    argv = ["train", "--store", str(store.path), "--config", str(config)]
    argv += ["--out", str(tmp_path / "run"), "--no-progress", "--threads", "1"]
    written = config.read_text()
    config.write_text(written.replace("history: 2", "history: 3"))
    capsys.readouterr()
    assert wxens([*argv, "--set", "seed=7"]) == 2
    err = capsys.readouterr().err
    assert f"trained data.history 2 ({config} gives 3); seed 0 (--set seed=7 gives 7)" in err
    assert f"drop --set seed=7 and set data.history: 2 in {config} to resume it" in err, err
    assert "train with them from the start, in another --out or with --no-resume" in err
    config.write_text(written)  # the fix named is taken
    assert wxens([*argv, "--set", "steps=3"]) == 0
    assert load_checkpoint(tmp_path / "run" / "last.pt").step == 3


def test_a_resumed_toml_config_run_names_its_fix_in_toml(tmp_path, capsys):
    """The run of ``c.yaml`` (history 2, seed 0, no validation period) resumed with a TOML
    config of history 3, seed 7 and a validation period was told to "set data.history: 2,
    seed: 0, data.validation: null in c.toml": YAML, which made the file invalid TOML. The
    fix comes in TOML (no null there: the key left out), and taken as named, resumes."""
    store = two_step_run(tmp_path)
    config = tmp_path / "c.toml"
    top = 'steps = 3\nbatch_size = 4\ndevice = "cpu"\n'
    tables = (
        '[model]\nkind = "flow_matching"\n'
        "[model.backbone]\nwidths = [8, 16]\nattention_heads = 0\nembedding_dim = 16\n"
        '[data]\nchannels = ["t2m"]\nhistory = 3\nleads = [1]\n'
    )
    validation = '[data.validation]\nstart = "2000-01-08"\nend = "2000-01-10"\n'
    config.write_text(f"{top}seed = 7\n{tables}{validation}")
    argv = ["train", "--store", str(store.path), "--config", str(config)]
    argv += ["--out", str(tmp_path / "run"), "--no-progress", "--threads", "1"]
    capsys.readouterr()
    assert wxens(argv) == 2
    err = " ".join(capsys.readouterr().err.split())
    fix = (
        "set history = 2 under [data], leave validation out under [data], set seed = 0 "
        f"before its first [table] in {config} to resume it"
    )
    assert fix in err, err
    config.write_text(f"{top}seed = 0\n{tables.replace('history = 3', 'history = 2')}")
    assert wxens(argv) == 0
    assert load_checkpoint(tmp_path / "run" / "last.pt").step == 3
