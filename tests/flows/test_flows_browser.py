"""The HTML report in headless Chromium: every figure loads (and a broken one is caught)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("chromium") is None,
        reason="Chromium is not installed: apt-get install -y chromium (CI must install it)",
    ),
]

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "report_browser.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check(report: Path, out: Path) -> tuple[int, dict]:
    shot, result = out / f"{report.stem}.png", out / f"{report.stem}.json"
    run = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            str(report),
            "--screenshot",
            str(shot),
            "--json",
            str(result),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.is_file(), run.stderr
    return run.returncode, json.loads(result.read_text())


def test_every_figure_of_the_report_loads_in_chromium(chain, tmp_path):
    code, result = check(chain.report, tmp_path)
    assert code == 0, result["not_loaded"]
    assert result["images_in_html"] == result["images_in_page"] == result["images_loaded"] >= 6
    assert all(image["width"] > 100 and image["height"] > 100 for image in result["images"])
    layout = result["layout"]
    assert layout["scroll_width"] <= layout["viewport"] and not layout["wider_than_viewport"]
    shot = Path(result["screenshot"]).read_bytes()
    assert shot.startswith(PNG_SIGNATURE) and len(shot) > 20_000


def test_a_figure_that_does_not_decode_is_reported(chain, tmp_path):
    broken = tmp_path / "broken.html"
    html = chain.report.read_text()
    start = html.index("data:image/png;base64,") + len("data:image/png;base64,")
    broken.write_text(html[:start] + "AAAA" + html[start:])  # corrupt the first PNG
    code, result = check(broken, tmp_path)
    assert code == 1
    assert [image["index"] for image in result["not_loaded"]] == [0]
