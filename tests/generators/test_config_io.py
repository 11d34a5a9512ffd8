"""Config values written back in a config file's own syntax."""

import tomllib

import pytest

from generators.config_io import toml_text


@pytest.mark.parametrize(
    "value",
    [
        {"start": "2019-03-01", "end": None},
        [{"start": "2019-03-07", "end": "2019-03-11"}],
        {"widths": [8, 16], "attention_heads": 0, "dropout": 0.1, "kind": 'a "b"\\c'},
        [True, 1.5e-3, float("inf")],
    ],
)
def test_a_value_written_as_toml_reads_back_as_itself(value):
    """The put-back fix of a resumed TOML config writes a trained value as TOML: read back by
    tomllib (the reader of configs), it is the value, a table's None keys left out (TOML has
    no null; a key left out reads None); a None inside a table raised TypeError."""
    def without_none(v):
        if isinstance(v, dict):
            return {k: without_none(x) for k, x in v.items() if x is not None}
        return [without_none(x) for x in v] if isinstance(v, list) else v

    assert tomllib.loads(f"x = {toml_text(value)}")["x"] == without_none(value)
