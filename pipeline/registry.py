"""The one registry of the project: entries by name, failing loudly on an unknown name.

Sources, forecast layouts, scores, physics checks, generators, samplers and baselines are
each one :class:`Registry`; a new kind is added by writing one class (or function) and
registering it, never by growing an if/elif on strings. The first look-up of any registry
loads the extensions installed as packages (:mod:`pipeline.extensions`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from pipeline.errors import InputError
from pipeline.extensions import NameTaken, failed_note, load_extensions, registered_by

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries by name: ``@registry.register("euler")`` then ``registry["euler"]``.

    Iteration and :meth:`values` follow registration order (a source registered first
    is asked first whether it reads an input); :meth:`names` is sorted, for messages.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._origins: dict[str, str] = {}

    def register(self, name: str, *, module: str | None = None) -> Callable[[T], T]:
        """Decorator: list an entry under ``name``. ``module`` (default: the entry's
        ``__module__``) names who registered it should the name come again: a
        :class:`NameTaken` (an InputError) naming both, e.g. an extension's taken name."""

        def decorate(entry: T) -> T:
            origin = registered_by(self.kind, name, module or getattr(entry, "__module__", None))
            if name in self._entries:
                raise NameTaken(
                    f"{self.kind} {name!r} registered twice: by {self._origins[name]} and by "
                    f"{origin}; rename the extension's (or uninstall one of them)"
                )
            self._entries[name] = entry
            self._origins[name] = origin
            return entry

        return decorate

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
