"""The software versions recorded beside a store's provenance, for a re-run to match.

wxens itself is named by its package version and, where it runs from a git checkout (an
editable install, a clone on ``PYTHONPATH``), the checkout's commit: the package version
alone ("0.1.0") was the same for every revision. The commit is read from the checkout's
``.git`` files, without running git (which a node may lack) or reaching a network; whether
the working tree has changes since is not known without git, and is not said.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

#: The folder holding the ``pipeline`` package: the checkout's root when run from one.
ROOT = Path(__file__).resolve().parent.parent


def software_versions() -> str:
    """The versions of the packages that shape a forecast's values, e.g. ``wxens
    0.1.0+g0123456789ab, torch 2.3.1, numpy 2.0.1, ...``: recorded when a store is created
    (not part of its provenance: a store may grow under a later version), for a re-run to
    match."""
    found = [f"wxens {wxens_version()}"]
    for package in _SOFTWARE:
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            continue
    return ", ".join(found)


_SOFTWARE = ("torch", "numpy", "xarray", "zarr", "icechunk")


def wxens_version() -> str:
    """The installed wxens's version ("unknown" where none is installed), with ``+g`` and
    the first 12 digits of the commit of the checkout it runs from, if it runs from one
    (``0.1.0+g0123456789ab``, as setuptools-scm writes a local version)."""
    try:
        installed = version("wxens")
    except PackageNotFoundError:
        installed = "unknown"
    commit = checkout_commit(ROOT)
    return installed if commit is None else f"{installed}+g{commit[:12]}"


def checkout_commit(root: Path) -> str | None:
    """The commit checked out at ``root`` (a clone, or a worktree whose ``.git`` is a file
    naming its git folder), read from ``HEAD`` and the branch's ref file or
    ``packed-refs``; None where ``root`` holds no git checkout or its files do not say."""
    git = root / ".git"
    try:
        if git.is_file():  # a worktree: "gitdir: PATH"; its refs are the main clone's
            git = (root / git.read_text().removeprefix("gitdir:").strip()).resolve()
        shared = git / "commondir"
        common = (git / shared.read_text().strip()).resolve() if shared.is_file() else git
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return _commit(head)  # detached
        ref = head.removeprefix("ref:").strip()
        for folder in (git, common):
            if (folder / ref).is_file():
                return _commit((folder / ref).read_text().strip())
        for line in (common / "packed-refs").read_text().splitlines():
            if line.endswith(f" {ref}"):
                return _commit(line.split()[0])
    except OSError:
        return None
    return None


def _commit(text: str) -> str | None:
    """``text`` if it is a commit's hash (SHA-1 or SHA-256 hex), else None."""
    return text if len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text) else None
