"""Preloaded into the Dask workers that ``zoo compare --executor dask`` starts.

Ctrl-C in a terminal reaches every process of its group, the spawned workers included;
the driver alone decides what to keep and closes the cluster, so the workers ignore it.
"""

import signal


def dask_setup(worker) -> None:
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the process's main thread: nothing to ignore here
        pass
