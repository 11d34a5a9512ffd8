"""The one registry of the project: entries by name, failing loudly on an unknown name.

Sources, forecast layouts, scores, physics checks, generators, samplers and baselines are
each one :class:`Registry`; a new kind is added by writing one class (or function) and
registering it, never by growing an if/elif on strings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from pipeline.errors import InputError

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries by name: ``@registry.register("euler")`` then ``registry["euler"]``.

    Iteration and :meth:`values` follow registration order (a source registered first
    is asked first whether it reads an input); :meth:`names` is sorted, for messages.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._entries[name] = entry
            return entry

        return decorate

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise InputError(
                f"unknown {self.kind} {name!r}; known: {', '.join(self.names()) or 'none'}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def values(self) -> tuple[T, ...]:
        return tuple(self._entries.values())

    def items(self) -> tuple[tuple[str, T], ...]:
        return tuple(self._entries.items())

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._entries))
