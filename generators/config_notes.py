"""The notes of a derived training config: comment lines at the top of its YAML saying what
each choice rests on (:class:`generators.config_derive.DerivedConfig`), each note wrapped to
:data:`NOTE_WIDTH` (:func:`wrap_note`) and read back whole (:func:`read_notes`)."""

from __future__ import annotations

from collections.abc import Iterable

DERIVED_FROM = "derived from "
"""The start of a derived config's first note, before the store's absolute path."""
NOTE_WIDTH = 98
"""The most characters of a note line: with its ``# `` a YAML line of 100 (a long store
path, or a ``--set`` of a whole section, ``calibration={...}``, made one of hundreds)."""
NOTE_INDENT = "   "
"""What starts each continued line of a note, before the rest of the note (which, broken
at a space, starts with that space: the line reads indented by four)."""


def wrap_note(note: str, width: int = NOTE_WIDTH) -> list[str]:
    """``note`` in lines of at most ``width`` characters, each after the first
    :data:`NOTE_INDENT` and the rest of the note: broken before the last space that fits,
    or inside a word longer than a line (a path). Nothing is dropped, so that
    :func:`read_notes` joins them back into ``note`` exactly."""
    lines, rest, room = [], note, width
    while len(rest) > room:
        lead = len(rest) - len(rest.lstrip(" "))  # a note's own leading spaces stay
        cut = rest.rfind(" ", lead + 1, room + 1)
        while cut > lead + 1 and rest[cut - 1] == " ":
            cut -= 1  # at the first of several spaces: no line ends with a space
        cut = cut if cut > lead else room  # no space that fits: inside the word
        lines.append(rest[:cut])
        rest, room = rest[cut:], width - len(NOTE_INDENT)
    lines.append(rest)
    return [lines[0], *(NOTE_INDENT + line for line in lines[1:])]


def note_comments(notes: Iterable[str]) -> str:
    """The YAML comment block of ``notes``: each note wrapped (:func:`wrap_note`), each of
    its lines after ``# ``."""
    return "".join(f"# {line}\n" for note in notes for line in wrap_note(note))


def read_notes(text: str) -> tuple[str, ...]:
    """The notes of a config's YAML ``text`` (the comment lines it starts with, written by
    :func:`note_comments`), each continued line joined back to its note."""
    notes: list[str] = []
    for line in text.splitlines():
        if not line.startswith("# "):
            break
        body = line.removeprefix("# ")
        if notes and body.startswith(NOTE_INDENT):
            notes[-1] += body.removeprefix(NOTE_INDENT)
        else:
            notes.append(body)
    return tuple(notes)
