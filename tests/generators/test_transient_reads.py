"""A checkpoint read that fails on a flaky network mount is wrapped into a StoreError that
keeps its cause, so the flows retry it; a torn file is not retried."""

from __future__ import annotations

import errno

import pytest
import torch

from generators.checkpoint import load_checkpoint
from pipeline.errors import StoreError, is_transient


def test_a_checkpoint_read_error_on_a_network_mount_is_retried(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    path.write_bytes(b"not read: torch.load fails first")

    def dropped_mount(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error", str(path))

    monkeypatch.setattr(torch, "load", dropped_mount)
    with pytest.raises(StoreError, match="is not a readable wxens checkpoint") as caught:
        load_checkpoint(path)
    assert is_transient(caught.value)


def test_a_torn_checkpoint_is_not_retried(tmp_path):
    path = tmp_path / "last.pt"
    path.write_bytes(b"PK\x03\x04 torn")
    with pytest.raises(StoreError, match="is not a readable wxens checkpoint") as caught:
        load_checkpoint(path)
    assert not is_transient(caught.value)
