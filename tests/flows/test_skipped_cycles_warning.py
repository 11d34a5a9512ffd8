"""The run flow's warning about cycles a ``latest`` run leaves out: its ``--init`` hint
printed the times as ``2019-03-01T06:00:00``, not as every other message and ``wxens info``
show them; the hint must be a value ``wxens run --init`` takes for those very cycles."""

from __future__ import annotations

import pandas as pd

from flows.commands.forecast import parse_inits
from flows.inputs import skipped_cycles_warning


def test_the_hint_names_the_skipped_cycles_as_an_init_range_wxens_run_takes():
    cycles = pd.date_range("2019-03-01T06", "2019-03-02T00", freq="6h")
    skipped = [t.isoformat() for t in cycles]  # as flows.inputs.skipped_cycles gives them
    message = skipped_cycles_warning("f.zarr", "s.zarr", skipped, latest=1, cycle_hours=6)
    assert message.startswith(
        "f.zarr: 4 cycle(s) after its last forecast, 2019-03-01T06:00 to 2019-03-02T00:00, "
        "have their analyses in s.zarr but are not among the latest=1 forecast now"
    )
    hint = "wxens run --init 2019-03-01T06:00/2019-03-02T00:00/6h)"
    assert hint in message and "00:00:00" not in message
    value = message.split("--init ")[1].split(")")[0]
    assert parse_inits([value]).equals(cycles)
