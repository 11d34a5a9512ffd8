"""The wxens revision recorded beside a store's provenance and said by ``wxens --version``:
the package version alone said "wxens 0.1.0" for every commit, so a store written by two
revisions could not tell them apart. The commit is read from the checkout's files (git
runs here only to make the checkouts)."""

from __future__ import annotations

import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest

import pipeline
from pipeline.software import checkout_commit, software_versions, wxens_version


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A git checkout of two commits on its branch."""
    root = tmp_path / "wxens"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    for n in range(2):
        (root / "f").write_text(str(n))
        git(root, "add", "f")
        git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", str(n))
    return root


def test_the_commit_of_a_branch_is_read_loose_and_packed(checkout):
    head = git(checkout, "rev-parse", "HEAD")
    assert checkout_commit(checkout) == head
    git(checkout, "pack-refs", "--all")  # the branch's ref file moves into packed-refs
    assert not (checkout / ".git" / "refs" / "heads" / "main").exists()
    assert checkout_commit(checkout) == head


def test_the_commit_of_a_detached_head_and_of_a_worktree_is_read(checkout, tmp_path):
    first = git(checkout, "rev-parse", "HEAD~1")
    git(checkout, "worktree", "add", "-q", "-b", "side", str(tmp_path / "side"), first)
    assert checkout_commit(tmp_path / "side") == first  # .git is a file naming its gitdir
    git(checkout, "checkout", "-q", "--detach", first)
    assert checkout_commit(checkout) == first


def test_a_folder_outside_a_checkout_has_no_commit(tmp_path):
    assert checkout_commit(tmp_path) is None


def test_the_version_recorded_and_said_names_this_checkouts_commit():
    root = Path(pipeline.__file__).parent.parent
    head = git(root, "rev-parse", "HEAD")
    assert wxens_version() == f"{version('wxens')}+g{head[:12]}"
    assert software_versions().startswith(f"wxens {wxens_version()}, ")
