"""Extensions installed as packages: the entry points of the group ``wxens.extensions``.

An installed distribution declares, in its ``pyproject.toml``::

    [project.entry-points."wxens.extensions"]
    mae = "wxens_mae.scores"

and :func:`load_extensions` imports ``wxens_mae.scores`` (or loads the object an entry
point names, ``module:object``), whose import registers its parts in the registries
(``register_score``, ``SAMPLERS.register``...). They load once per process: early in the
``wxens`` command (before its parser), when :mod:`flows.steps` is imported (so is it by
:mod:`flows.pipelines`; each flow run of ``wxens serve`` is a subprocess importing its
flow's module), and on the first look-up of any :class:`~pipeline.registry.Registry` (a
notebook, a dask worker), so that a score an extension adds is computed by ``wxens verify``
and by ``verify()`` in a notebook alike.

An extension that fails to import is logged as a warning, naming the entry point, its
distribution, the error and the fix, and the others still load. A warning, not an error:
it is third-party code the command may not need (``wxens info``, ``wxens compact``), and
an error would make every command unusable until it is fixed or uninstalled; a command
that names one of its parts fails on that name, with the failed extensions in the
message (:func:`failed_note`). A name registered twice, an extension's taken by wxens or
by an extension loaded before it, is by the same rule a warning naming both: the first
owner's (wxens' own, whenever it registers) is kept, and every command still runs
(:func:`name_taken`).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from importlib.metadata import entry_points

GROUP = "wxens.extensions"
"""The entry-point group of wxens extensions."""

log = logging.getLogger(__name__)


@dataclass
class Extension:
    """One entry point of :data:`GROUP`: its name and target (``module`` or
    ``module:object``), its distribution, what it registered, or why it failed to load."""

    name: str
    target: str
    distribution: str
    version: str
    registered: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def label(self) -> str:
        return f"the extension {self.name!r} ({self.distribution} {self.version}, {self.target})"


_LOCK = threading.RLock()
_extensions: list[Extension] | None = None
"""Every extension found, in load order; None until :func:`load_extensions` ran."""
_loading: Extension | None = None
"""The extension being imported now (its registrations are credited to it)."""


def load_extensions() -> tuple[Extension, ...]:
    """Import every entry point of :data:`GROUP`, once per process (a later call, or one
    made while an extension imports, returns what is loaded so far). A failed import is a
    warning."""
    global _extensions
    with _LOCK:
        if _extensions is not None:
            return tuple(_extensions)
        _extensions = []
        for point in sorted(entry_points(group=GROUP), key=lambda p: p.name):
            _load(point)
        return tuple(_extensions)


def _load(point) -> None:
    """Import the entry point ``point``, crediting what it registers to it."""
    global _loading
    dist = point.dist
    extension = Extension(
        point.name,
        point.value,
        dist.name if dist is not None else "(unknown distribution)",
        dist.version if dist is not None else "?",
    )
    assert _extensions is not None
    _extensions.append(extension)
    _loading = extension
    try:
        point.load()
    except Exception as err:
        extension.error = f"{type(err).__name__}: {err}"
        uninstall = f"pip uninstall {extension.distribution}"
        log.warning(
            "%s failed to import (%s); the command goes on without it. Fix the extension, or "
            "uninstall it (%s)",
            extension.label,
            extension.error,
            uninstall,
        )
    finally:
        _loading = None


@dataclass(frozen=True)
class Owner:
    """Who registered a name: in words, and the extension when one did (None: wxens)."""

    label: str
    extension: Extension | None = None


def registered_by(kind: str, name: str, module: str | None) -> Owner:
    """Who registers ``name`` in the registry of ``kind`` from ``module``: the extension being
    imported, if ``module`` is of its package (noted as registered by it; wxens' own modules
    it imports register as themselves), or ``module``."""
    package = (module or "").partition(".")[0]
    if _loading is not None and package == _loading.target.partition(".")[0]:
        _loading.registered.append(f"{kind} {name}")
        return Owner(_loading.label, _loading)
    return Owner(module or "(unknown module)")


def name_taken(kind: str, name: str, kept: Owner, dropped: Owner) -> None:
    """Warn that ``dropped`` (an extension) registered ``name``, taken by ``kept``, and note
    it on the extension (``wxens info``): a warning, as for an extension that fails to
    import, so that every command, ``info`` first, still runs and names the culprit."""
    assert dropped.extension is not None
    said = f"{kind} {name}"
    done = dropped.extension.registered
    done[done.index(said)] = f"{said} (not used: taken by {kept.label})"
    log.warning(
        "%s %r is registered by %s and by %s; the command goes on with %s's. Rename the "
        "extension's, or uninstall it (pip uninstall %s)",
        kind,
        name,
        kept.label,
        dropped.label,
        kept.label,
        dropped.extension.distribution,
    )


def failed_note() -> str:
    """For an unknown-name message: the extensions that failed to import, or ''."""
    failed = [e for e in _extensions or () if e.error is not None]
    if not failed:
        return ""
    return "; failed to import: " + ", ".join(f"{e.label}: {e.error}" for e in failed)
