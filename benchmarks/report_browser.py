"""Open a wxens HTML report in headless Chromium: check that every figure loads, keep a
screenshot.

    python benchmarks/report_browser.py wxens-demo/report.html
    python benchmarks/report_browser.py REPORT --screenshot shot.png --json result.json

Chromium (Debian package ``chromium``) loads a copy of the report with one script added
that, once the page has loaded, records for every ``<img>`` whether it decoded
(``complete`` and ``naturalWidth > 0``) and the page's layout at the window's width (its
scroll width, every table or figure reaching past the viewport, every figure shown
narrower than drawn); ``--dump-dom`` returns the page with that record,
``--screenshot`` the picture. No DevTools protocol, no network (``file://`` only, every
background service off). Exit status 0 when every figure loaded, 1 when one did not,
2 when Chromium is missing or failed. Writes its findings as JSON (default
``benchmarks/results/report_browser.json``; screenshot beside it).
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
WINDOW = (1280, 2400)
PROBE = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images).map((img, i) => ({
    index: i, alt: img.alt, loaded: img.complete && img.naturalWidth > 0 && img.naturalHeight > 0,
    width: img.naturalWidth, height: img.naturalHeight}));
  const view = document.documentElement.clientWidth;
  const boxes = Array.from(document.querySelectorAll("table, img")).map((el, i) => {
    const box = el.getBoundingClientRect();
    return {tag: el.tagName.toLowerCase(), index: i, label: el.alt || el.className,
      left: Math.round(box.left), right: Math.round(box.right), width: Math.round(box.width),
      natural_width: el.naturalWidth || null};
  });
  const wide = boxes.filter((box) => box.left < 0 || box.right > view);
  const scaled = boxes.filter((box) => box.natural_width && box.natural_width > box.width + 1);
  const layout = {viewport: view, scroll_width: document.documentElement.scrollWidth,
    wider_than_viewport: wide, images_scaled_down: scaled};
  const out = document.createElement("pre");
  out.id = "wxens-image-probe";
  out.textContent = JSON.stringify({images: images, layout: layout});
  document.body.appendChild(out);
});
</script>"""
PROBE_RESULT = re.compile(r'<pre id="wxens-image-probe">(.*?)</pre>', re.S)


def find_chromium() -> str | None:
    """The path of a Chromium executable on PATH, or None."""
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def chromium_command(chromium: str, profile: Path, *extra: str) -> list[str]:
    """Headless, sandbox-free (containers run as root), offline and quiet."""
    return [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--virtual-time-budget=15000",
        *extra,
    ]


def check_report(report: Path, screenshot: Path, *, timeout: float = 120.0) -> dict:
    """Load ``report`` in headless Chromium; the per-image load record and a screenshot.

    Raises FileNotFoundError without Chromium, RuntimeError if Chromium fails.
    """
    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError(
            "no Chromium on PATH; install the Debian package: apt-get install -y chromium"
        )
    source = report.read_text(encoding="utf-8")
    expected = len(re.findall(r"<img\b", source, flags=re.I))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="wxens-chromium-") as tmp:
        probed = Path(tmp) / report.name
        probed.write_text(source.replace("</body>", PROBE + "</body>"), encoding="utf-8")
        run = subprocess.run(
            chromium_command(chromium, Path(tmp) / "profile", "--dump-dom", probed.as_uri()),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        match = PROBE_RESULT.search(run.stdout)
        if run.returncode != 0 or match is None:
            raise RuntimeError(
                f"chromium --dump-dom failed (exit {run.returncode}): {run.stderr[-2000:]}"
            )
        probe = json.loads(html.unescape(match.group(1)))
        images = probe["images"]
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        shot = subprocess.run(
            chromium_command(
                chromium, Path(tmp) / "profile", f"--screenshot={screenshot}", report.as_uri()
            ),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if shot.returncode != 0 or not screenshot.is_file():
            raise RuntimeError(f"chromium --screenshot failed: {shot.stderr[-2000:]}")
    version = subprocess.run([chromium, "--version"], capture_output=True, text=True).stdout
    return {
        "report": str(report),
        "chromium": version.strip(),
        "images_in_html": expected,
        "images_in_page": len(images),
        "images_loaded": sum(image["loaded"] for image in images),
        "not_loaded": [image for image in images if not image["loaded"]],
        "images": images,
        "layout": probe["layout"],
        "screenshot": str(screenshot),
        "window": list(WINDOW),
        "seconds": round(time.perf_counter() - started, 2),
    }


def all_loaded(result: dict) -> bool:
    """Every ``<img>`` of the HTML is in the page and decoded, and there is at least one."""
    return result["images_in_html"] == result["images_in_page"] == result["images_loaded"] > 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="the HTML report to open")
    parser.add_argument("--screenshot", type=Path, default=RESULTS / "report_browser.png")
    parser.add_argument("--json", type=Path, default=RESULTS / "report_browser.json")
    args = parser.parse_args(argv)
    if not args.report.is_file():
        print(f"no report at {args.report}; make one with `wxens demo`", file=sys.stderr)
        return 2
    try:
        result = check_report(args.report.resolve(), args.screenshot.resolve())
    except (FileNotFoundError, RuntimeError, subprocess.TimeoutExpired) as err:
        print(f"report_browser: {err}", file=sys.stderr)
        return 2
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{result['images_loaded']} of {result['images_in_html']} figures loaded in "
        f"{result['chromium']} ({result['seconds']} s); screenshot {result['screenshot']}"
    )
    return 0 if all_loaded(result) else 1


if __name__ == "__main__":
    sys.exit(main())
