"""Bad input to the generator commands: each is refused with one line on stderr that names
the value and the fix, exit 2, no traceback (``flows.cli.main`` returns 2)."""

from __future__ import annotations

import pytest

import generators.rollout
from flows.cli import main as wxens
from pipeline.store import ingest

CONFIG = (
    "model: {kind: flow_matching, backbone: {widths: [8, 16], attention_heads: 0, "
    "embedding_dim: 16}}\n"
    "data: {channels: [t2m], history: 2, leads: [1]}\nsteps: 2\nbatch_size: 4\ndevice: cpu\n"
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A store, a model trained on it in two steps, and a store on another grid and step."""
    root = tmp_path_factory.mktemp("bad-input")
    store = ingest(
        "synthetic:n_lat=8,n_lon=12,n_times=24,step=6h,seed=3",
        root / "syn.zarr",
        variables=["t2m"],
        progress=False,
    )
    other = ingest(
        "synthetic:n_lat=6,n_lon=10,n_times=24,step=1h,seed=3",
        root / "other.zarr",
        variables=["t2m"],
        progress=False,
    )
    config = root / "c.yaml"
    config.write_text(CONFIG)
    argv = ["train", "--store", str(store.path), "--config", str(config)]
    assert wxens(argv + ["--out", str(root / "run"), "--no-progress"]) == 0
    return root, store, other, config


def refused(capsys, argv: list[str], *names: str) -> str:
    """Run ``wxens argv``: exit 2 and one stderr line naming each of ``names``."""
    capsys.readouterr()
    assert wxens(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert "Traceback" not in err
    for name in names:
        assert name in err, (name, err)
    return err


def forecast_argv(trained, *extra: str) -> list[str]:
    root, store, _, _ = trained
    return [
        "forecast",
        "--checkpoint",
        str(root / "run"),
        "--store",
        str(store.path),
        "--init",
        "2000-01-03",
        "--lead",
        "6h",
        "--members",
        "2",
        "--out",
        str(root / "never.zarr"),
        "--no-progress",
        *extra,
    ]


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("optim.lr=[1", "'[1' is not valid YAML"),
        ("optim.lr={", "'{' is not valid YAML"),
        ("sampler=euler: [2", "'euler: [2' is not valid YAML"),
        ("steps=@2", "'@2' is not valid YAML"),
    ],
)
def test_a_yaml_error_in_set_is_one_line_naming_it(trained, capsys, value, named):
    root, store, _, config = trained
    argv = ["train", "--store", str(store.path), "--config", str(config), "--out"]
    err = refused(capsys, argv + [str(root / "never"), "--set", value], value, named)
    assert "quote" in err
    assert not (root / "never").exists()


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("euler:nfe=[2", "nfe='[2' is not an integer"),
        ("euler:nfe=2:3", "nfe='2:3' is not an integer"),
        ("euler:{nfe: 2}", "'{nfe: 2}' is not key=value; valid keys: nfe"),
        ("euler[nfe=2]", "unknown sampler 'euler[nfe=2]'; known: "),
    ],
)
def test_a_bad_sampler_is_refused_by_the_parser_naming_it(trained, capsys, spec, named):
    # as a bad option value is, after the usage: it was refused once the checkpoint loaded
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        wxens(forecast_argv(trained, "--sampler", spec))
    assert stopped.value.code == 2
    said = capsys.readouterr().err.strip().splitlines()[-1]
    assert said.startswith("wxens forecast: error: argument --sampler: "), said
    assert named in said and "(a spec such as " in said
    assert not (trained[0] / "never.zarr").exists()


@pytest.mark.parametrize("device", ["tpu", "gpu:0", "CUDA", "cuda:x", "meta"])
def test_an_unknown_device_is_one_line_naming_it(trained, capsys, device):
    err = refused(capsys, forecast_argv(trained, "--device", device), f"device {device!r}")
    assert "use auto, cpu, cuda or cuda:N" in err
    assert not (trained[0] / "never.zarr").exists()


def test_a_batch_that_cannot_fit_is_refused_with_its_estimate(trained, capsys, monkeypatch):
    # 8 GiB free: 20 million members of an 8 x 12 grid need far more
    monkeypatch.setattr(generators.rollout, "available_memory", lambda device: (0, 8 * 2**30))
    err = refused(
        capsys,
        forecast_argv(trained, "--members", "20000000", "--device", "cpu"),
        "1 initial time x 20000000 members",
        "GiB on cpu (host memory) but 8.0 GiB is available",
        "lower --members to ",
    )
    fits = int(err.split("lower --members to ")[1].split()[0])
    # the arrays alone would leave room for over a million; the network's activations count
    assert 10_000 < fits < 1_000_000
    assert not (trained[0] / "never.zarr").exists()


def test_only_an_initial_time_whose_members_cannot_fit_is_refused(trained, capsys, monkeypatch):
    one = None

    def record(batch, device):
        nonlocal one
        one = batch.bytes_per_trajectory()
        return real(batch, device)

    real = generators.rollout.fitted_inits
    monkeypatch.setattr(generators.rollout, "fitted_inits", record)
    argv = forecast_argv(trained, "--device", "cpu")
    argv[argv.index("--out") + 1] = str(trained[0] / "fits.zarr")
    assert wxens(argv) == 0
    monkeypatch.setattr(generators.rollout, "fitted_inits", real)
    per_trajectory = sum(one)
    argv = forecast_argv(trained, "--device", "cpu", "--batch-members", "8")
    argv[argv.index("2000-01-03")] = "2000-01-03/2000-01-03T18/6h"
    # room for 3 trajectories: 4 initial times x 2 members are drawn 1 x 2 at a time
    free = 3 * per_trajectory
    monkeypatch.setattr(generators.rollout, "available_memory", lambda device: (0, free))
    argv[argv.index("--out") + 1] = str(trained[0] / "fewer.zarr")
    assert wxens(argv) == 0
    # room for 1: not even one initial time's 2 members
    free = per_trajectory
    argv[argv.index("--out") + 1] = str(trained[0] / "never.zarr")
    refused(capsys, argv, "1 initial time x 2 members", "lower --members to 1 or less")
    assert not (trained[0] / "never.zarr").exists()


def test_a_checkpoint_on_another_grid_and_step_names_the_grid_first(trained, capsys):
    root, _, other, _ = trained
    argv = forecast_argv(trained)
    argv[argv.index("--store") + 1] = str(other.path)
    err = refused(capsys, argv, "was trained on a 8 x 12 grid", "has a 6 x 10 grid")
    assert "native step 1 h" in err
    assert "tendency std" not in err


def test_a_refused_store_is_not_first_warned_about_the_training_period(trained, capsys, caplog):
    """A forecast from a store of another grid first warned that its initial times fell in
    the training period '... to ...', then refused the store; an open training period is
    now named by the span of times it trained on (every time of the store then)."""
    root = trained[0]
    argv = forecast_argv(trained)
    argv[argv.index("--store") + 1] = str(trained[2].path)
    with caplog.at_level("WARNING"):
        refused(capsys, argv, "was trained on a 8 x 12 grid")
    assert "training period" not in caplog.text
    argv = forecast_argv(trained)
    argv[argv.index("--out") + 1] = str(root / "warned.zarr")
    with caplog.at_level("WARNING"):
        assert wxens(argv) == 0
    assert "training period 2000-01-01T00:00 to 2000-01-06T18:00 of" in caplog.text


def test_an_unknown_device_in_a_training_config_is_one_line_naming_it(trained, capsys):
    root, store, _, config = trained
    argv = ["train", "--store", str(store.path), "--config", str(config), "--no-progress"]
    err = refused(
        capsys, argv + ["--out", str(root / "tpu-run"), "--set", "device=tpu"], "device: 'tpu'"
    )
    assert "use auto, cpu, cuda or cuda:N" in err


@pytest.mark.parametrize(
    ("period", "named"),
    [
        ("data: {train: {end: nonsense}}", "data.train.end 'nonsense' is not a time"),
        ("data: {validation: {start: 2000-01-05, end: 2019-13-01}}", "data.validation.end"),
        ("data: {exclude: [{start: '2000-01-02T06:00+01:00'}]}", "data.exclude[0].start"),
        ("data: {train: {start: 2000-01-04, end: 2000-01-03}}", "data.train ends before it"),
        ("fine_tune: {period: {start: 2000-01-05T12, end: 2000-01-05T06}}", "fine_tune.period"),
        ("calibration: {period: {start: 2000-01-05, end: 2000-01-0x}}", "calibration.period.end"),
    ],
)
def test_a_bad_period_in_a_training_config_is_refused_when_read(trained, capsys, period, named):
    """``data: {train: {end: nonsense}}``, or a validation end 2019-13-01, trained until the
    store was sliced by it and ended in pandas' (or YAML's) traceback; a bad calibration
    period ended the calibration after the whole training. Each is refused as the config is
    read, naming the file, the key and the fix."""
    root, store, _, _ = trained
    config = root / "period.yaml"
    config.write_text(f"{CONFIG.split('data:')[0]}steps: 2\ndevice: cpu\n{period}\n")
    argv = ["train", "--store", str(store.path), "--config", str(config), "--no-progress"]
    err = refused(capsys, argv + ["--out", str(root / "never")], f"{config}: {named}")
    assert "2019-03-01T00:00" in err or "give an end after its start" in err
    assert not (root / "never").exists()


def test_a_bad_key_from_set_is_named_as_the_override_not_the_file(tmp_path, capsys):
    """A misspelt --set key read as an error of the config file, which holds no such key;
    the file's own errors are still named as its own."""
    from generators.config import load_train_config
    from pipeline.errors import InputError

    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("model: {kind: flow_matching}\nsteps: 10\n")
    bad.write_text("model: {kind: flow_matching}\nstepz: 10\n")
    made = r"'chanels'.*, as overrides= \(--set\) data.chanels=\[t2m\] made it"
    with pytest.raises(InputError, match=made):
        load_train_config(good, ["data.chanels=[t2m]"])
    with pytest.raises(InputError, match=r"'stepz'.*in \S*/bad.yaml; known keys: \[[^]]*\]$"):
        load_train_config(bad, ["data.chanels=[t2m]"])


def test_a_config_path_that_is_a_directory_is_named_as_one(tmp_path):
    # `--config runs` (a folder) said "config file runs does not exist".
    from generators.config import load_train_config
    from pipeline.errors import InputError

    with pytest.raises(InputError, match=f"config file {tmp_path} is a directory, not a"):
        load_train_config(tmp_path, [])
    with pytest.raises(InputError, match="does not exist"):
        load_train_config(tmp_path / "none.yaml", [])


def test_an_init_without_history_is_refused_without_the_training_period_warning(
    trained, capsys, caplog
):
    """An initial time whose history window lies before the store's first time was first
    warned about as weather of the training period, then refused for its history: the
    refusal is now all a refused forecast prints."""
    argv = forecast_argv(trained)
    argv[argv.index("2000-01-03")] = "2000-01-01"
    with caplog.at_level("WARNING"):
        refused(capsys, argv, "2000-01-01")
    assert "training period" not in caplog.text
    assert not (trained[0] / "never.zarr").exists()
