"""The software versions recorded beside a store's provenance, for a re-run to match."""

from __future__ import annotations


def software_versions() -> str:
    """The versions of the packages that shape a forecast's values, e.g. ``wxens 0.1.0,
    torch 2.3.1, numpy 2.0.1, ...``: recorded when a store is created (not part of its
    provenance: a store may grow under a later version), for a re-run to match."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in _SOFTWARE:
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            continue
    return ", ".join(found)


_SOFTWARE = ("wxens", "torch", "numpy", "xarray", "zarr", "icechunk")
