"""A checkpoint's forecast network is built once in a process (generators.forecast_model):
the forecast flow draws each batch in a task of its own, and a dask forecast hands each
batch to a worker, and each task built (and on CUDA compiled) the network again."""

from __future__ import annotations

import torch

from generators.checkpoint import load_checkpoint
from generators.forecast_model import forecast_network
from tests.generators.tiny import two_step_run

CPU = torch.device("cpu")


def test_a_checkpoint_file_loaded_again_gives_the_network_built_before(tmp_path):
    two_step_run(tmp_path)
    first = forecast_network(load_checkpoint(tmp_path / "run"), CPU, compile=True)
    assert not first.training
    again = forecast_network(load_checkpoint(tmp_path / "run"), CPU, compile=True)
    assert again is first  # a second task of the same forecast: nothing built
    # the file changed (trained again, calibrated): its new weights, not the kept ones
    loaded = load_checkpoint(tmp_path / "run")
    ema = {name: value + 1.0 for name, value in loaded.ema_state.items()}
    changed = loaded.replace(ema_state=ema).save(tmp_path / "changed.pt")
    assert changed.digest != loaded.digest
    rebuilt = forecast_network(load_checkpoint(changed.path), CPU, compile=True)
    assert rebuilt is not first
    for name, value in rebuilt.state_dict().items():
        torch.testing.assert_close(value, ema[name])
    # a checkpoint made in memory has no file to know it by: built each time
    unsaved = loaded.replace(path=None, digest="")
    assert forecast_network(unsaved, CPU, True) is not forecast_network(unsaved, CPU, True)
