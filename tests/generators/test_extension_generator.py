"""A generator of an extension installed as a package (``model.kind`` of the config): a
network of its that fails, or returns another shape than its input, is refused naming the
extension before training; its checkpoint, read where the extension is not installed, is
refused naming the extension's distribution and the fix."""

from __future__ import annotations

import pytest

from generators.checkpoint import load_checkpoint
from pipeline.errors import StoreError
from pipeline.store import ingest
from tests.verification.test_extensions import install, wxens

CONV_FLOW = """
from generators.backbone import UNet
from generators.base import GENERATORS
from generators.flow_matching import FlowMatching


class Network(UNet):
    def forward(self, x, noise, cond_map, cond_embedding):
        out = super().forward(x, noise, cond_map, cond_embedding)
        {bug}
        return out


@GENERATORS.register("conv_flow")
class ConvFlow(FlowMatching):
    name = "conv_flow"

    def __init__(self, config):
        super().__init__(config)
        self.backbone = Network(config.backbone)
"""

BUGS = {
    "crop": "out = out[..., :-1]",
    "one channel": "out = out[:, :1]",  # broadcast against 2 channels: trained silently
    "raise": "raise RuntimeError('conv_flow: layer 3 is missing')",
}

LABEL = "the extension 'convflow' (wxens-convflow 0.1, wxens_convflow)"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("ext_generator")
    spec = "synthetic:n_lat=16,n_lon=16,n_times=40,step=6h,seed=2"
    return ingest(spec, root / "syn.zarr", variables=["z"], progress=False)


def train(root, store, bug: str = "pass"):
    """``wxens train`` of two steps of ``conv_flow``, the extension installed in ``root``."""
    install(root, "wxens-convflow", "convflow", "wxens_convflow", CONV_FLOW.format(bug=bug))
    return train_small(root, store, "kind: conv_flow, backbone: {")


def train_small(root, store, model: str):
    """``wxens train`` of two steps of a small U-Net, ``model`` opening the model's
    mapping up to its backbone's keys (``kind: conv_flow, backbone: {``)."""
    config = root / "c.yaml"
    config.write_text(
        f"model: {{{model}widths: [8, 16], attention_heads: 0, embedding_dim: 16}}}}\n"
        "data: {history: 2, leads: [1]}\nsteps: 2\nbatch_size: 4\n"
        "device: cpu\ncalibration: null\n"
    )
    args = ["train", "--store", str(store.path), "--config", str(config), "--no-progress"]
    return wxens(root, *args, "--out", str(root / "run"))


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_a_network_of_an_extension_that_fails_is_refused_naming_it(tmp_path, store, bug):
    """It was a bare torch traceback from inside the step's memory count (a cropped field),
    or no error at all (one channel of two, broadcast in the loss)."""
    done = train(tmp_path, store, BUGS[bug])
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert f"wxens train: error: the generator 'conv_flow' of {LABEL}" in done.stderr
    expected = {
        "crop": "returned a field of shape (1, 2, 16, 15) for one of (1, 2, 16, 16)",
        "one channel": "returned a field of shape (1, 1, 16, 16) for one of (1, 2, 16, 16)",
        "raise": "failed (RuntimeError: conv_flow: layer 3 is missing)",
    }[bug]
    assert expected in done.stderr, done.stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory, store):
    """The folder of a two-step run of ``conv_flow`` (``root/run``), the extension installed
    in it."""
    root = tmp_path_factory.mktemp("conv_flow_run")
    done = train(root, store)
    assert done.returncode == 0, done.stderr
    return root


def test_a_checkpoint_of_an_extension_not_installed_names_it_and_the_fix(trained):
    """It said the checkpoint came from another version of wxens (one with other config
    keys), to load with that version or retrain."""
    with pytest.raises(StoreError) as refused:
        load_checkpoint(trained / "run" / "last.pt")  # here, the extension is not installed
    message = str(refused.value)
    assert f"the generator 'conv_flow' of {LABEL}" in message, message
    assert "pip install wxens-convflow==0.1" in message, message
    assert "another version of wxens" not in message, message


def test_info_of_a_run_names_the_extension_of_its_generator(trained):
    """`wxens info RUN` said `model conv_flow`: which extension (and version) to install
    to use the run was not said."""
    done = wxens(trained, "info", str(trained / "run"))
    assert done.returncode == 0, done.stderr
    expected = "model      conv_flow (extension 'convflow', wxens-convflow 0.1), backbone unet,"
    assert expected in done.stdout, done.stdout
