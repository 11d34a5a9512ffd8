"""``wxens info`` without a store: this environment, the versions of wxens and of the
packages that shape its values, and the extensions installed as packages."""

from __future__ import annotations

import importlib

#: wxens' torch-free modules that register parts an extension may name too: imported first,
#: so that an extension's name they take is a warning naming both, and its line says so.
REGISTERING = (
    "generators.correction.baselines",
    "generators.sampler_spec",
    "pipeline.adapters",
    "pipeline.sources",
    "verification.physics",
    "verification.scores",
)


def describe_environment() -> str:
    """The versions of wxens and the packages that shape its values, and each extension
    installed as a package (:mod:`pipeline.extensions`): its distribution, version and
    what it registered, or why it failed to import."""
    from pipeline.extensions import GROUP, load_extensions
    from pipeline.software import software_versions

    for module in REGISTERING:
        importlib.import_module(module)

    extensions = load_extensions()  # the CLI loaded them: the same ones, not again
    lines = [f"software   {software_versions()}"]
    for e in extensions:
        did = f"failed: {e.error}" if e.error else ", ".join(e.registered) or "registers nothing"
        lines.append(f"extension  {e.name} = {e.target} ({e.distribution} {e.version}): {did}")
    if not extensions:
        lines.append(f"extensions none installed (entry points of the group {GROUP})")
    return "\n".join(lines)
