"""The rerun commands of docs/benchmarks.md at their smallest settings write where ``--out``
says, never over the committed results, and ``--help`` answers without running anything."""

from __future__ import annotations

import json

import pytest

from benchmarks import bias_correct_rerun, physics_sensitivity, sampling, tendency_tolerance


def test_physics_sensitivity_help_answers_and_names_out(capsys):
    with pytest.raises(SystemExit) as exit_:
        physics_sensitivity.main(["--help"])
    assert exit_.value.code == 0
    assert "--out" in capsys.readouterr().out


def test_tendency_tolerance_writes_to_out(tmp_path):
    out = tmp_path / "nested" / "tendency.json"
    tendency_tolerance.main(["--seeds", "1", "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["members"] == tendency_tolerance.MEMBERS
    assert set(result["failed"]) == set(tendency_tolerance.SETS)


def test_bias_correct_rerun_quick_writes_to_out(tmp_path):
    out = tmp_path / "rerun.json"
    bias_correct_rerun.main(["--quick", "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["identical"] and result["inits_before"] == 12
    assert set(result["rerun"]) == {"changed only", "every time"}


def test_sampling_refuses_an_unknown_case_naming_the_known_ones(capsys):
    with pytest.raises(SystemExit) as exit_:
        sampling.main(["--devices", "cpu", "--cases", "uk-small:uk"])
    assert exit_.value.code == 2
    message = capsys.readouterr().err
    assert "'uk-small:uk'" in message and "uk-0.25deg" in message and "medium" in message
