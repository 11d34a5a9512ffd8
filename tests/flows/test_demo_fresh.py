"""``wxens demo --fresh`` deletes only a demo's own work directory."""

from __future__ import annotations

from flows.cli import main


def test_fresh_refuses_a_folder_the_demo_did_not_write(tmp_path, capsys):
    workdir = tmp_path / "thesis"
    workdir.mkdir()
    (workdir / "chapter1.tex").write_text("keep me")
    (workdir / "scores.nc").write_bytes(b"")  # a demo output beside it does not excuse it
    code = main(["demo", "--workdir", str(workdir), "--fresh"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "chapter1.tex" in err and str(workdir) in err
    assert (workdir / "chapter1.tex").read_text() == "keep me"
    assert sorted(p.name for p in workdir.iterdir()) == ["chapter1.tex", "scores.nc"]


def test_fresh_refuses_a_regular_file(tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    assert main(["demo", "--workdir", str(target), "--fresh"]) == 2
    assert "not a folder" in capsys.readouterr().err and target.read_text() == "keep me"
