#!/usr/bin/env bash
# Install wxens for development: the Python package with its dev extras, and Chromium
# (Debian/Ubuntu package) for the test that opens the HTML report in a headless browser.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -e ".[dev]"
if ! command -v chromium >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium \
            || echo "warning: could not install chromium; the report-in-browser test will be skipped"
    else
        echo "note: install Chromium (apt-get install chromium) to run the report-in-browser test"
    fi
fi
