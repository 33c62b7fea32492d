"""Keeping a plugin's side effects in their place: what it prints goes to stderr (stdout
belongs to ``--json``), and an import that takes long is named while it runs."""

from __future__ import annotations

import contextlib
import sys

DISABLE_ENV = "ZOO_DISABLE_PLUGINS"
SLOW_IMPORT_SECONDS = 3.0  # `zoo plugins` flags plugins slower than this to import


@contextlib.contextmanager
def slow_import_notice(name: str, where: str, after: float = SLOW_IMPORT_SECONDS):
    """Say on stderr which plugin is still importing after ``after`` seconds (a hang is not silent)."""
    import threading

    def notice():
        print(f"Still importing plugin {name!r} ({where}) after {after:.0f} s; "
              f"{DISABLE_ENV}={name} skips it", file=sys.__stderr__, flush=True)

    timer = threading.Timer(after, notice)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def plugin_output_to_stderr():
    """Whatever plugins print goes to stderr, so ``--json`` on stdout stays valid."""
    return contextlib.redirect_stdout(sys.stderr)
