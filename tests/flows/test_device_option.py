"""``--device cuda`` on a machine without CUDA is refused in the command line's words
(``--device``, not a config's ``device:``), before any store or checkpoint is read: the
refusal came after the reads, from the model's loading, and said "use device: auto or
cpu". Through the CLI, on paths that do not exist: a read would say so first."""

from __future__ import annotations

import pytest
import torch

from flows.cli import main
from generators.device import resolve_device
from pipeline.errors import InputError

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")

ARGUMENTS = {
    "forecast": ["--init", "2019-01-01T00", "--lead", "24h", "--out", "{d}/f.zarr"],
    "calibrate": ["--start", "2019-01-01", "--end", "2019-01-02"],
    "tune": [],
    "run": ["--init", "2019-01-01T00", "--out", "{d}/f.zarr", "--scores", "{d}/s.nc"],
}


@pytest.mark.parametrize("command", sorted(ARGUMENTS))
def test_device_cuda_without_cuda_names_the_option_before_any_read(command, tmp_path, capsys):
    missing = tmp_path / "missing"
    argv = [command, "--checkpoint", f"{missing}/ck", "--store", f"{missing}/s.zarr"]
    argv += [a.format(d=tmp_path) for a in ARGUMENTS[command]] + ["--device", "cuda"]
    assert main(argv) == 2
    said = capsys.readouterr().err.strip()
    assert said == (
        f"wxens {command}: error: --device 'cuda' asked for but CUDA is not available; "
        "use --device auto or cpu"
    )
    assert not missing.exists()


def test_a_config_device_is_refused_in_the_config_words():
    with pytest.raises(InputError, match="device: 'cuda' asked for .*; use device: auto or cpu"):
        resolve_device("cuda")
