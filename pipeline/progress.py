"""``tqdm``, the progress bar of every long call: tqdm's notebook widget in a Jupyter kernel
that can show one (ipywidgets installed), else its text bar, as ``tqdm.auto`` chooses; but
``tqdm.auto`` also warned ("IProgress not found. Please update jupyter and ipywidgets") on
import in every kernel without ipywidgets, in the first cell of any notebook that opened a
store, although nothing was wrong and the text bar works.

:func:`dask_bar`: the same bar counting the tasks of the dask computes it surrounds (dask's
own ``ProgressBar`` showed the share done and the time elapsed, never an ETA)."""

from __future__ import annotations

import importlib.util
import sys
import warnings
from contextlib import AbstractContextManager, nullcontext

if "ipykernel" in sys.modules and importlib.util.find_spec("ipywidgets") is not None:
    from tqdm.auto import tqdm
else:
    from tqdm import tqdm

__all__ = ["dask_bar", "tqdm"]


def dask_bar(
    show: bool, *, desc: str | None = None, dt: float = 0.1, leave: bool = True
) -> AbstractContextManager[object]:
    """A :data:`tqdm` bar on stderr of the tasks done (of those scheduled: its ETA) by each
    ``dask.compute`` of the local scheduler within the ``with`` block, redrawn at most every
    ``dt`` seconds; nothing unless ``show``. A compute of a ``distributed`` cluster runs
    no local tasks: no bar (its dashboard shows them)."""
    if not show:
        return nullcontext()
    with warnings.catch_warnings():  # tqdm.dask imports tqdm.auto: its warning (above)
        warnings.simplefilter("ignore")
        from tqdm.dask import TqdmCallback
    return TqdmCallback(
        tqdm_class=tqdm, file=sys.stderr, mininterval=dt, unit="task", desc=desc, leave=leave
    )
