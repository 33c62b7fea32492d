"""Ctrl-C and SIGTERM that are never lost.

Python runs a signal handler between two bytecodes of the main thread, wherever it is.
If that is inside a garbage-collection callback, a ``__del__`` or a weakref callback, the
``KeyboardInterrupt`` it raises is printed as "Exception ignored in ..." and dropped — and
JAX, which Keras imports whenever it is installed, registers a gc callback that runs on
every collection. A comparison then went on training after Ctrl-C.

So the zoo's handler also remembers the request, and the loops that run for long (every
training batch, the Dask executor's wait for results, the start of each job) call
``check()``, which raises ``KeyboardInterrupt`` again if a stop was asked for.
"""

from __future__ import annotations

import signal

_requested: int | None = None  # the signal that asked to stop, once one has


def request_stop(signum, frame=None):
    """The handler for SIGINT and SIGTERM: remember, then interrupt what runs now."""
    global _requested
    _requested = signum
    raise KeyboardInterrupt


def install() -> None:
    """Stop on Ctrl-C and on SIGTERM (docker stop, a scheduler's time limit) alike: save what finished."""
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)


def requested() -> bool:
    return _requested is not None


def check() -> None:
    """Raise ``KeyboardInterrupt`` if a stop was asked for, even one whose first raise was swallowed."""
    if _requested is not None:
        raise KeyboardInterrupt


def exit_code() -> int | None:
    """The exit status of a command stopped by a signal: 128 + its number (130 for Ctrl-C, 143
    for SIGTERM), as shells report it; None when no stop was asked for."""
    return None if _requested is None else 128 + int(_requested)


def reset() -> None:
    """Forget a stop request (for tests, which run many commands in one process)."""
    global _requested
    _requested = None
