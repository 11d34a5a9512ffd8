"""``torchrun ... rank_cwd.py FOLDER ARGS...``: ``wxens ARGS`` in a rank whose working
directory is ``FOLDER/rank-RANK``, its own. A path through a link to ``/proc/self/cwd``
then names a different folder in each rank, as a path does on machines without a shared
file system (the tests of :mod:`generators.shared_paths`)."""

import os
import sys

from flows.cli import main

if __name__ == "__main__":
    os.chdir(os.path.join(sys.argv[1], f"rank-{os.environ['RANK']}"))
    sys.exit(main(sys.argv[2:]))
