"""How a forecast's error names the window of an initial time's history."""

from __future__ import annotations

from generators.data.forecast import window_text


def test_a_long_window_is_named_by_its_ends_not_every_offset():
    """A forecast of an initial time the store lacks history for listed the 24 offsets of
    its window as quoted strings: "(['-23', '-22', '-21', ... '-1', '0'] h; ...)"."""
    assert window_text([float(h) for h in range(-23, 1)]) == "-23 to 0 h, every 1 h"
    assert window_text([-6.0, 0.0]) == "-6, 0 h"
    assert window_text([-48.0, -24.0, -12.0, -6.0, -3.0, 0.0]) == "-48, -24, -12, -6, -3, 0 h"
