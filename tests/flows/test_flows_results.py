"""Task results persist as plain JSON, and a result file that is anything else (a pickle
dropped where a result lives) is never loaded: the task runs again and no code runs."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from prefect import flow
from prefect.serializers import PickleSerializer

from flows.runtime import RESULTS_DIR, wxens_task

CALLS: list[list[str]] = []
MARKER = "pickle-ran"


class Payload:
    """Unpickling this creates the file :data:`MARKER` in the working directory."""

    def __reduce__(self):
        return (open, (MARKER, "w"))


@wxens_task(name="shout", reads=())
def shout(words: list[str]) -> list[str]:
    CALLS.append(list(words))
    return [w.upper() for w in words]


@flow(name="shout-flow")
def shout_flow(words: list[str]) -> list[str]:
    return shout(words)


def pickle_record(json_record: bytes) -> bytes:
    """The JSON record with its serializer swapped for pickle and its value a pickle."""
    record = json.loads(json_record)
    serializer = PickleSerializer(picklelib="cloudpickle")
    record["metadata"]["serializer"] = serializer.model_dump(mode="json")
    record["result"] = serializer.dumps(Payload()).decode()
    return json.dumps(record).encode()


@pytest.mark.parametrize(
    "craft",
    [pickle_record, lambda _record: pickle.dumps(Payload())],
    ids=["record-naming-pickle", "raw-pickle"],
)
def test_results_are_json_and_a_pickle_is_never_loaded(
    prefect_server, tmp_path, monkeypatch, craft
):
    monkeypatch.chdir(tmp_path)
    CALLS.clear()
    assert shout_flow(["a", "b"]) == ["A", "B"]
    (stored,) = (tmp_path / RESULTS_DIR).iterdir()
    record = json.loads(stored.read_bytes())  # JSON, not a pickle
    assert record["metadata"]["serializer"]["type"] == "json"
    assert json.loads(record["result"]) == ["A", "B"]
    assert shout_flow(["a", "b"]) == ["A", "B"] and len(CALLS) == 1, "cached rerun skipped"

    stored.write_bytes(craft(stored.read_bytes()))
    assert shout_flow(["a", "b"]) == ["A", "B"]
    assert not (tmp_path / MARKER).exists(), "the pickle was loaded"
    assert len(CALLS) == 2, "the task ran again instead of trusting the replaced file"
    assert json.loads(json.loads(stored.read_bytes())["result"]) == ["A", "B"]
    assert shout_flow(["a", "b"]) == ["A", "B"] and len(CALLS) == 2, "cached again"
    assert not Path(MARKER).exists()
