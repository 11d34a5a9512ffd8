"""``tqdm``, the progress bar of every long call: tqdm's notebook widget in a Jupyter kernel
that can show one (ipywidgets installed), else its text bar, as ``tqdm.auto`` chooses; but
``tqdm.auto`` also warned ("IProgress not found. Please update jupyter and ipywidgets") on
import in every kernel without ipywidgets, in the first cell of any notebook that opened a
store, although nothing was wrong and the text bar works."""

from __future__ import annotations

import importlib.util
import sys

if "ipykernel" in sys.modules and importlib.util.find_spec("ipywidgets") is not None:
    from tqdm.auto import tqdm
else:
    from tqdm import tqdm

__all__ = ["tqdm"]
