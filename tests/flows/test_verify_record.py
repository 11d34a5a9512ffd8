"""The ``verify`` flow's record of what it read: equal initial times spelled otherwise are
the same request, other times another."""

from __future__ import annotations

from flows.inputs import verify_record


def test_initial_times_spelled_otherwise_are_the_same_request(tmp_path):
    """A schedule lists ``2000-01-08T00``; ``wxens run --init A/B/6h`` expands the range
    to ``2000-01-08T00:00:00``: the same times, whose verification a rerun had made again."""
    paths = (str(tmp_path / "f.zarr"), str(tmp_path / "t.zarr"), str(tmp_path / "s.nc"), None)
    listed = verify_record(*paths, ["2000-01-08T00", "2000-01-08T06"])
    expanded = verify_record(*paths, ["2000-01-08T00:00:00", "2000-01-08 06:00"])
    assert listed == expanded
    assert verify_record(*paths, ["2000-01-08T00", "2000-01-08T12"])[1] != listed[1]
    assert verify_record(*paths, None)[1] != listed[1]  # every time the store holds
