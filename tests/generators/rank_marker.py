"""``torchrun ... rank_marker.py CHECKPOINT STORE OUT``: each rank joins a gloo group that
waits at most 20 s, runs :func:`generators.shared_paths.check_ranks_see` and prints what
it raised (``rank R: TYPE: MESSAGE``), so a rank left waiting on rank 0 says so too."""

import os
import sys
from datetime import timedelta

import torch.distributed as dist

from generators.shared_paths import check_ranks_see

if __name__ == "__main__":
    dist.init_process_group("gloo", timeout=timedelta(seconds=20))
    try:
        check_ranks_see(*sys.argv[1:4], "")  # no digest: the marker is refused before
        said = "no error"
    except Exception as err:
        said = f"{type(err).__name__}: {err}"
    # one write of the whole line: print writes the text and its newline apart when stdout is
    # unbuffered, and the two ranks' lines ran together on the shared pipe ("...pathrank 1:")
    os.write(sys.stdout.fileno(), f"rank {dist.get_rank()}: {said}\n".encode())
