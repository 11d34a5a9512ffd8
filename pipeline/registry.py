"""The one registry of the project: entries by name, failing loudly on an unknown name.

Sources, forecast layouts, scores, physics checks, generators, samplers and baselines are
each one :class:`Registry`; a new kind is added by writing one class (or function) and
registering it, never by growing an if/elif on strings. The first look-up of any registry
loads the extensions installed as packages (:mod:`pipeline.extensions`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

from pipeline.errors import InputError
from pipeline.extensions import (
    Extension,
    Owner,
    failed_note,
    load_extensions,
    name_taken,
    registered_by,
)

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries by name: ``@registry.register("euler")`` then ``registry["euler"]``.

    Iteration and :meth:`values` follow registration order (a source registered first
    is asked first whether it reads an input); :meth:`names` is sorted, for messages.

    ``built_in``: wxens' own names and the modules that register them, where those modules
    may load after the extensions (the generators', with torch): an extension's entry of
    such a name is a warning naming both as it registers, as one registered after the
    built-in's is, so every command warns of it, ``wxens info`` included, and lists it as
    not used, not only the commands that load the built-in.
    """

    def __init__(self, kind: str, built_in: Mapping[str, str] | None = None):
        self.kind = kind
        self.built_in = dict(built_in or {})
        self._entries: dict[str, T] = {}
        self._owners: dict[str, Owner] = {}

    def register(self, name: str, *, module: str | None = None) -> Callable[[T], T]:
        """Decorator: list an entry under ``name``. ``module`` (default: the entry's
        ``__module__``) names who registered it should the name come again: an extension's
        name taken by wxens or by an extension loaded before it is a warning naming both
        (:func:`~pipeline.extensions.name_taken`), and wxens' (or the first) entry is kept,
        whichever registered first; a name wxens registers twice is a TypeError (its bug)."""

        def decorate(entry: T) -> T:
            owner = registered_by(self.kind, name, module or getattr(entry, "__module__", None))
            held = self._owners.get(name)
            if held is None and owner.extension is not None and name in self.built_in:
                name_taken(self.kind, name, kept=Owner(self.built_in[name]), dropped=owner)
                return entry
            if held is not None and owner.extension is not None:
                name_taken(self.kind, name, kept=held, dropped=owner)
                return entry
            if held is not None and held.extension is None:
                raise TypeError(
                    f"{self.kind} {name!r} registered twice: by {held.label} and by "
                    f"{owner.label}; give one of them another name"
                )
            if held is not None:  # wxens' own, after an extension's: the built-in wins
                name_taken(self.kind, name, kept=owner, dropped=held)
            self._entries[name] = entry
            self._owners[name] = owner
            return entry

        return decorate

    def extension_of(self, name: str) -> str | None:
        """The extension that registered ``name``, in words; None for wxens' own."""
        extension = self.extension(name)
        return None if extension is None else extension.label

    def extension(self, name: str) -> Extension | None:
        """The extension that registered ``name`` (its distribution and version, which a
        checkpoint records); None for wxens' own."""
        self._loaded()
        return self._owners[name].extension

    def implement(self, name: str) -> Callable[[T], T]:
        """Decorator: put a class in the place of the entry ``name``, a class it subclasses
        (a declaration: a sampler's parameters, read where torch is not imported; the
        implementation, the class that samples). An undeclared name, or a class that is not
        a subclass of its declaration, is a TypeError (a bug of the implementing module)."""

        def decorate(entry: T) -> T:
            declared = self._entries.get(name)
            if not (isinstance(declared, type) and issubclass(entry, declared)):
                raise TypeError(
                    f"{entry!r} implements the {self.kind} {name!r}, declared as {declared!r}: "
                    "declare the name first and subclass its declaration"
                )
            self._entries[name] = entry
            return entry

        return decorate

    def __getitem__(self, name: str) -> T:
        try:
            return self._loaded()[name]
        except KeyError:
            raise InputError(
                f"unknown {self.kind} {name!r}; known: {', '.join(self.names()) or 'none'}"
                f"{failed_note()}"
            ) from None

    def named(self, name: str, where: str) -> T:
        """``self[name]`` for the name a config gives at ``where`` (``cfg.yaml.model.kind``):
        an unknown one is refused naming that key and file, as the config's other refusals."""
        try:
            return self[name]
        except InputError as err:
            raise InputError(f"{where}: {err}") from None

    def _loaded(self) -> dict[str, T]:
        """The entries, the installed extensions' included (loaded on the first call)."""
        load_extensions()
        return self._entries

    def __contains__(self, name: object) -> bool:
        return name in self._loaded()

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())

    def values(self) -> tuple[T, ...]:
        return tuple(self._loaded().values())

    def items(self) -> tuple[tuple[str, T], ...]:
        return tuple(self._loaded().items())

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._loaded()))
