"""Checkpoints and configs: round trip, atomic writes, refusal of another grid or variables."""

from __future__ import annotations

import os
import pickle
import re
import stat
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from generators import BackboneConfig, EDMConfig
from generators.checkpoint import load_checkpoint
from generators.config import (
    ModelSpec,
    TrainConfig,
    from_mapping,
    load_train_config,
    parse_sampler,
    sampler_spec,
    to_mapping,
)
from generators.config_data import DataConfig
from generators.data.forecast import ForecastData
from generators.rollout_plan import plan_rollout
from generators.train import Trainer, to_batch
from pipeline.errors import InputError, StoreError
from pipeline.solar import SOLAR_FORCINGS
from pipeline.store import ingest


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    spec = "synthetic:n_lat=16,n_lon=16,n_times=60,step=6h,seed=1"
    wide = "synthetic:n_lat=16,n_lon=20,n_times=60,step=6h,seed=1"
    return {
        "t2m": ingest(spec, root / "a.zarr", variables=["t2m"], progress=False),
        "t2m_z": ingest(spec, root / "b.zarr", variables=["t2m", "z"], progress=False),
        "wide": ingest(wide, root / "c.zarr", variables=["t2m"], progress=False),
    }


def config(channels=("t2m",), tendency_per_grid_point=False, solar_forcing=False) -> TrainConfig:
    model = EDMConfig(backbone=BackboneConfig(widths=(8, 16), attention_heads=0, embedding_dim=16))
    data = DataConfig(
        channels=channels,
        history=2,
        leads=(1, 2),
        tendency_per_grid_point=tendency_per_grid_point,
        solar_forcing=solar_forcing,
    )
    return TrainConfig(
        model=ModelSpec("edm", model),
        data=data,
        steps=2,
        batch_size=4,
        device="cpu",
    )


def test_a_checkpoint_round_trips_and_rebuilds_the_same_model(stores, tmp_path):
    channels = ("t2m", "z500", "z850")
    trainer = Trainer(
        stores["t2m_z"],
        config(channels, tendency_per_grid_point=True, solar_forcing=True),
        tmp_path,
    )
    trainer.run(progress=False)
    saved = trainer.save(calibration={"factors": [[1.5, 1.0, 1.0]]})
    loaded = load_checkpoint(tmp_path)  # a training directory resolves to last.pt
    assert loaded.digest == saved.digest and len(loaded.digest) == 16
    assert loaded.step == 2 and loaded.kind == "edm"
    assert loaded.channels == ("t2m", "z500", "z850")
    assert loaded.leads_hours == (6.0, 12.0) and loaded.spec.history == (-1, 0)
    assert loaded.spec.tendency_per_grid_point and loaded.spec.solar_forcing
    assert loaded.static_names[-3:] == SOLAR_FORCINGS
    assert loaded.model_config.backbone.static_channels == 4 + 3
    assert loaded.normalization.tendency_std.shape == (2, 3, 16, 16)
    assert loaded.train_config == trainer.config
    assert loaded.model_config.backbone.channels == 3 and loaded.model_config.backbone.history == 2
    np.testing.assert_array_equal(
        loaded.normalization.tendency_std, trainer.train_data.normalization.tendency_std
    )
    np.testing.assert_array_equal(loaded.latitude, trainer.train_data.latitude)
    assert loaded.calibration == {"factors": [[1.5, 1.0, 1.0]]}
    for key, value in trainer.ema.state_dict().items():
        torch.testing.assert_close(loaded.ema_state[key], value, rtol=0, atol=0)
    model = loaded.build_model()
    batch = trainer.train_data[[0, 1]]
    b = to_batch(batch)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    sampler = parse_sampler("edm_heun:num_steps=3")
    torch.testing.assert_close(
        model.sample(b.condition, 2, sampler=sampler, generator=g1),
        trainer.ema.module.eval().sample(b.condition, 2, sampler=sampler, generator=g2),
    )


def test_writes_are_atomic(stores, tmp_path, monkeypatch):
    trainer = Trainer(stores["t2m"], config(), tmp_path)
    first = trainer.save()
    before = (tmp_path / "last.pt").read_bytes()

    def torn_write(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", torn_write)
    with pytest.raises(OSError, match="disk full"):
        trainer.save()
    assert (tmp_path / "last.pt").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    assert load_checkpoint(tmp_path).digest == first.digest


def test_loading_against_another_grid_or_variables_names_both(stores, tmp_path):
    trainer = Trainer(stores["t2m"], config(), tmp_path)
    checkpoint = load_checkpoint(trainer.save().path)
    ForecastData.from_store(checkpoint, stores["t2m"])  # same grid: fine
    with pytest.raises(InputError, match=r"16 x 16 grid.*16 x 20 grid"):
        ForecastData.from_store(checkpoint, stores["wide"])
    z_trained = Trainer(stores["t2m_z"], config(channels=("t2m", "z500")), tmp_path / "z")
    z_checkpoint = load_checkpoint(z_trained.save().path)
    with pytest.raises(InputError, match=r"no channel\(s\) \['z500'\]"):
        ForecastData.from_store(z_checkpoint, stores["t2m"])


def test_garbage_and_missing_checkpoints_are_store_errors(tmp_path):
    with pytest.raises(StoreError, match="no checkpoint"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "bad.pt").write_bytes(b"PK\x03\x04 a checkpoint cut short")
    with pytest.raises(StoreError, match="not a readable wxens checkpoint") as err:
        load_checkpoint(tmp_path / "bad.pt")
    # a torn copy (a transfer cut short) says how to get a good one, in one line
    assert "restore it from a backup" in str(err.value) and "--no-resume" in str(err.value)
    assert "\n" not in str(err.value)
    # another file given for the checkpoint (the run's config.yaml): said so, not torch's
    # advice to load it with weights_only=False nor a backup to restore
    (tmp_path / "config.yaml").write_text("# derived from stores/uk.zarr\nmodel: {}\n")
    with pytest.raises(StoreError, match="not a wxens checkpoint: torch.save did not") as err:
        load_checkpoint(tmp_path / "config.yaml")
    assert "weights_only" not in str(err.value) and "backup" not in str(err.value)
    assert "wxens train --out DIR" in str(err.value)


class _Payload:
    """Pickles to a call of ``os.system``: what a hostile .pt carries."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_that_would_run_code_is_refused_unrun_and_said_so(tmp_path):
    """A .pt someone sent holding a pickled call (not weights) runs nothing, and the
    message says why it is refused, not torch's advice to load it with weights_only=False
    (which would run the code) nor a backup to restore."""
    marker = tmp_path / "ran"
    torch.save({"format": 1, "x": _Payload(marker)}, tmp_path / "last.pt")
    with pytest.raises(StoreError, match="could run code") as err:
        load_checkpoint(tmp_path)
    assert not marker.exists()
    message = str(err.value)
    assert "weights_only" not in message and "backup" not in message and "\n" not in message
    assert "posix.system" in message or "os.system" in message  # what it would have called
    # a plain pickle (not torch.save's), in another protocol: refused alike, without warning
    with open(tmp_path / "raw.pt", "wb") as f:
        pickle.dump(_Payload(marker), f, protocol=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(StoreError, match="could run code") as err:
            load_checkpoint(tmp_path / "raw.pt")
    assert not marker.exists() and "weights_only" not in str(err.value)


def test_configs_load_from_yaml_and_toml_with_overrides(tmp_path):
    (tmp_path / "c.yaml").write_text(
        "model:\n  kind: flow_matching\n  backbone: {widths: [16, 32]}\n"
        "data: {history: 24, leads: [1, 3], train: {start: 2019-03-01, end: 2019-03-17}}\n"
        "fine_tune: {steps: 10}\n"
    )
    (tmp_path / "c.toml").write_text(
        '[model]\nkind = "flow_matching"\n[model.backbone]\nwidths = [16, 32]\n'
        "[data]\nhistory = 24\nleads = [1, 3]\n"
        '[data.train]\nstart = "2019-03-01"\nend = "2019-03-17"\n'
        "[fine_tune]\nsteps = 10\n"
    )
    a = load_train_config(tmp_path / "c.yaml", ["optim.lr=1e-4", "data.leads=[1, 6]"])
    b = load_train_config(tmp_path / "c.toml", ["optim.lr=1e-4", "data.leads=[1, 6]"])
    assert a == b
    assert a.optim.lr == 1e-4 and a.data.sample_spec.leads == (1, 6)
    assert a.data.sample_spec.history == tuple(range(-23, 1))
    assert a.data.train.start == "2019-03-01" and a.total_steps == a.steps + 10
    assert from_mapping(TrainConfig, to_mapping(a)) == a


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lrr=1", r"unknown key\(s\) \['lrr'\] in \S*/c.yaml.optim"),
        ("steps=many", "c.yaml.steps must be an integer"),
        ("model.backbone.channels=3", "come from the data"),
        ("model.kind=gan", "unknown generator 'gan'"),
        ("data.history=[0, -1]", "history offsets"),
        ("steps", "key.subkey=value"),
    ],
)
def test_bad_config_values_name_their_key(tmp_path, override, message):
    (tmp_path / "c.yaml").write_text("model: {kind: flow_matching}\n")
    with pytest.raises(InputError, match=message):
        load_train_config(tmp_path / "c.yaml", [override])


def test_sampler_specs_round_trip():
    sampler = parse_sampler("edm_heun:num_steps=5,churn=1.5,noise_inflation=1.05")
    assert sampler.nfe == 9 and sampler.churn == 1.5
    assert parse_sampler(sampler_spec(sampler)) == sampler
    # one sampler, one spec: an integer given for a float field is that float
    assert sampler_spec(parse_sampler("edm_euler:churn=0,noise_scale=1")) == sampler_spec(
        parse_sampler("edm_euler:churn=0.0,noise_scale=1.0")
    )
    with pytest.raises(InputError, match="unknown sampler"):
        parse_sampler("rk4:nfe=3")


def largest_tensor_offset(path) -> int:
    """Byte offset in the file of the middle of its largest tensor (torch stores tensors
    uncompressed in a zip archive: the entry's data start after its local header)."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        info = max(
            (i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size
        )
    with open(path, "rb") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = (int.from_bytes(f.read(2), "little") for _ in range(2))
    return info.header_offset + 30 + name_len + extra_len + info.file_size // 2


def test_a_flipped_bit_in_the_weights_is_a_store_error(stores, tmp_path):
    trainer = Trainer(stores["t2m"], config(), tmp_path)
    path = trainer.save().path
    load_checkpoint(path)  # intact: loads
    data = bytearray(path.read_bytes())
    data[largest_tensor_offset(path)] ^= 0x04  # one bit of one weight
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"weights do not match the sha256") as err:
        load_checkpoint(path)
    assert str(path) in str(err.value) and "retrain" in str(err.value)


def test_a_checkpoint_without_a_digest_loads_with_a_warning(stores, tmp_path, caplog):
    trainer = Trainer(stores["t2m"], config(), tmp_path)
    saved = trainer.save()
    payload = torch.load(saved.path, weights_only=True)
    del payload["weights_sha256"]
    torch.save(payload, saved.path)
    with caplog.at_level("WARNING", logger="generators.checkpoint"):
        loaded = load_checkpoint(saved.path)
    assert "no sha256 of its weights" in caplog.text and str(saved.path) in caplog.text
    for key, value in trainer.ema.state_dict().items():
        torch.testing.assert_close(loaded.ema_state[key], value, rtol=0, atol=0)


def test_a_save_removes_the_temporaries_of_killed_writes_of_that_checkpoint(stores, tmp_path):
    trainer = Trainer(stores["t2m"], config(), tmp_path)
    stale = [".last.pt.a1b2c3d4.tmp", ".last.pt.zz_9x8y7.tmp"]  # killed saves of last.pt
    kept = [
        ".other.pt.a1b2c3d4.tmp",  # another checkpoint's
        ".last.pt.a1b2c3d4.tmp.bak",  # not the pattern
        ".last.pt.short.tmp",
        "last.pt.a1b2c3d4.tmp",
        "notes.txt",
    ]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"half a checkpoint")
    trainer.save()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["last.pt", *kept])


def test_a_checkpoint_from_a_wxens_with_other_config_keys_is_a_store_error(stores, tmp_path):
    """A config key this version does not know (a checkpoint from a newer wxens) is refused
    naming the file, the key and the fix, not as a bad command-line config."""
    saved = Trainer(stores["t2m"], config(), tmp_path).save()
    payload = torch.load(saved.path, weights_only=True)
    payload["train_config"]["data"]["from_the_future"] = True
    torch.save(payload, saved.path)
    with pytest.raises(StoreError, match="another version of wxens") as err:
        load_checkpoint(saved.path)
    assert str(saved.path) in str(err.value) and "from_the_future" in str(err.value)


def test_a_forecast_normalises_with_the_checkpoints_statistics_not_the_stores(stores, tmp_path):
    """The same initial window gives the same network input whatever else the store holds:
    a store of fewer (or later, or more) times has other statistics, and normalising with
    them would change the forecast of the same initial time and seed."""
    trainer = Trainer(stores["t2m"], config(), tmp_path)
    checkpoint = load_checkpoint(trainer.save().path)
    spec = "synthetic:n_lat=16,n_lon=16,n_times=60,step=6h,seed=1"
    short = ingest(
        spec,
        tmp_path / "short.zarr",
        variables=["t2m"],
        time=slice("2000-01-05", None),
        progress=False,
    )
    mean_full = float(stores["t2m"].statistics["t2m"].sel(statistic="mean"))
    assert float(short.statistics["t2m"].sel(statistic="mean")) != pytest.approx(mean_full)
    inits = pd.DatetimeIndex(["2000-01-10T00"])
    plan = plan_rollout([12.0], checkpoint.leads_hours, (-6.0, 0.0))
    full = ForecastData.from_store(checkpoint, stores["t2m"])
    cut = ForecastData.from_store(checkpoint, short)
    torch.testing.assert_close(cut.windows(inits, plan), full.windows(inits, plan))
    states = full.windows(inits, plan).numpy()
    np.testing.assert_allclose(cut.denormalise(states), full.denormalise(states), rtol=1e-6)


def test_a_store_whose_values_are_far_from_the_training_statistics_is_refused(stores, tmp_path):
    """Values in other units under the canonical ones (degrees Celsius declared K) are not
    the variable the model learnt: refused naming the channel, both statistics and the fix,
    rather than forecast from inputs 100 training stds away."""
    trainer = Trainer(stores["t2m"], config(), tmp_path)
    checkpoint = load_checkpoint(trainer.save().path)
    celsius = stores["t2m"].dataset[["t2m"]].load()
    celsius["t2m"] = celsius.t2m - 273.15
    celsius.attrs = {}
    celsius.t2m.attrs = {"units": "K"}
    celsius.to_netcdf(tmp_path / "celsius.nc")
    mislabelled = ingest(tmp_path / "celsius.nc", tmp_path / "c.zarr", progress=False)
    with pytest.raises(InputError, match=r"t2m has mean 9.9.* K there, against mean 283") as err:
        ForecastData.from_store(checkpoint, mislabelled)
    assert str(mislabelled.path) in str(err.value) and str(checkpoint.path) in str(err.value)
    assert "--units" in str(err.value)


def test_a_mismatch_leads_with_what_differs(stores, tmp_path):
    """Two long descriptions that differ in one word (the step, or a grid's last latitude)
    left the user to diff them: the message first names what differs, on both sides, and
    leaves out the static fields when they are the same."""
    trainer = Trainer(stores["t2m"], config(), tmp_path)
    checkpoint = load_checkpoint(trainer.save().path)
    hourly = ingest(
        "synthetic:n_lat=16,n_lon=16,n_times=60,step=3h,seed=1",
        tmp_path / "3h.zarr",
        variables=["t2m"],
        progress=False,
    )
    with pytest.raises(InputError) as err:
        ForecastData.from_store(checkpoint, hourly)
    message = str(err.value)
    assert message.startswith(f"checkpoint {checkpoint.path} and {hourly.path} differ in: ")
    assert "native step (6 h in the checkpoint, 3 h in the store)" in message
    differ = message.split(". The checkpoint was trained on")[0]
    assert "grid (" not in differ and "channels (" not in differ
    assert "static fields" not in message
    with pytest.raises(
        InputError, match=r"differ in: grid \(16 x 16 .* in the checkpoint, 16 x 20"
    ):
        ForecastData.from_store(checkpoint, stores["wide"])


def test_a_checkpoint_is_written_with_the_modes_of_the_files_beside_it(stores, tmp_path):
    """last.pt came out 0600 (mkstemp's mode) beside a 0644 config.yaml and log.jsonl: a run
    moved or shared with colleagues could not be read by them. It takes the umask's mode."""
    trainer = Trainer(stores["t2m"], config(), tmp_path)
    path = trainer.save().path
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize("share", [0.25, 0.75])
def test_a_save_past_a_file_size_limit_raises_the_file_systems_error(stores, tmp_path, share):
    """Past a file-size limit (EFBIG, a full disk alike) torch's zip writer raised
    'RuntimeError: unexpected pos' over the OSError (at 3/4 of the file), a traceback where
    the CLI prints the file system's error and its fix; and the error named no file."""
    import errno
    import resource

    trainer = Trainer(stores["t2m"], config(), tmp_path)
    first = trainer.save()
    before = (tmp_path / "last.pt").read_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(len(before) * share), hard))
    try:
        with pytest.raises(OSError) as err:
            trainer.save()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert err.value.errno == errno.EFBIG and "last.pt" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    assert load_checkpoint(tmp_path).digest == first.digest


def test_ctrl_c_during_a_checkpoint_write_is_the_interrupt(stores, tmp_path, monkeypatch):
    """Ctrl-C of `train --nproc 2` landed inside a periodic save: torch's zip writer raised
    'RuntimeError: unexpected pos' over the KeyboardInterrupt, so the run printed a
    traceback instead of saving on the interrupt and saying so."""
    import generators.checkpoint

    trainer = Trainer(stores["t2m"], config(), tmp_path)
    first = trainer.save()

    def interrupted(payload, f):
        f.write(b"part of a checkpoint")
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:  # what torch's writer raises on its way out
            message = "[enforce fail at inline_container.cc:672] . unexpected pos"
            raise RuntimeError(message)  # noqa: B904

    monkeypatch.setattr(generators.checkpoint.torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        trainer.save()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    assert load_checkpoint(tmp_path).digest == first.digest


def test_a_bad_config_is_named_by_its_path_not_only_its_file_name(tmp_path):
    # runs/a/config.yaml and runs/b/config.yaml were both "config.yaml" in the error
    (tmp_path / "b").mkdir()
    path = tmp_path / "b" / "config.yaml"
    path.write_text("model: {kind: flow_matching, bogus: 1}\n")
    with pytest.raises(InputError, match=f"in {re.escape(str(path))}.model; known keys"):
        load_train_config(path)


@pytest.mark.parametrize(
    ("calibration", "where", "what"),
    [
        ({"factors": [[np.float64(1.5)]]}, r"calibration\.factors\[0\]\[0\]", "numpy.float64"),
        ({"fitted": pd.Timestamp("2019-03-18")}, r"calibration\.fitted", "Timestamp"),
    ],
)
def test_a_value_the_loader_would_refuse_is_not_written(stores, tmp_path, calibration, where, what):
    """A value built in Python that load_checkpoint's weights-only reader refuses (a numpy
    scalar, a Timestamp) was written: calibration, which rewrites the checkpoint in place,
    left the trained model unloadable. It is refused before the file is touched, naming
    where it is and what it is."""
    trainer = Trainer(stores["t2m"], config(), tmp_path)
    first = trainer.save()
    before = (tmp_path / "last.pt").read_bytes()
    with pytest.raises(InputError, match=f"(?s){where}.*{what}.*not written"):
        trainer.save(calibration=calibration)
    assert (tmp_path / "last.pt").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    assert load_checkpoint(tmp_path).digest == first.digest
