"""What the quality studies share: a scorecard read by lead, markdown tables and the JSON
and markdown files written; rendering only, every figure comes from a scorecard."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd
import xarray as xr

RESULTS = Path(__file__).resolve().parent / "results"
log = logging.getLogger(__name__)


def lead_table(
    rows: Mapping[str, Mapping[str, object]],
    leads: Sequence[str],
    cell: Callable[[object, str], str],
    *,
    header: bool = True,
    title: str = "",
) -> list[str]:
    """A markdown table, one line per row, one column per lead: ``cell(rows[name][lead],
    lead)``. Without ``header``, the lines continue the table above."""
    lines = []
    if header:
        prefix = f"{title} " if title else ""
        lines += [
            "| | " + " | ".join(f"{prefix}{h} h" for h in leads) + " |",
            "| --- | " + " | ".join("---" for _ in leads) + " |",
        ]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(cell(row[h], h) for h in leads) + " |")
    return lines


def scorecard(tree: xr.DataTree, variable: str) -> dict[str, dict[str, float]]:
    """The scorecard of one variable as {lead hours: {score: value}}."""
    card = tree["scorecard"].to_dataset().sel(variable=variable)
    out = {}
    for lead in card.lead_time.values:
        hours = f"{pd.Timedelta(lead) / pd.Timedelta(hours=1):g}"
        values = card.sel(lead_time=lead)
        out[hours] = {k: float(v) for k, v in values.data_vars.items() if v.ndim == 0}
    return out


def run_key(*what: object) -> str:
    """A short key of what a forecast store depends on (checkpoint, sampler, members, seed):
    a work directory holds one store per key, reused by a rerun and never by another run."""
    return hashlib.sha256(repr(what).encode()).hexdigest()[:10]


def write_results(name: str, payload: dict, markdown: str, results: Path = RESULTS) -> None:
    """``results/NAME.json`` (the payload) and ``results/NAME.md``."""
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{name}.json").write_text(json.dumps(payload, indent=1) + "\n")
    (results / f"{name}.md").write_text(markdown)
    log.info("wrote %s", results / f"{name}.md")
