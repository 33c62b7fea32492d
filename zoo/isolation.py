"""Keeping a plugin's side effects in their place: what it prints goes to stderr (stdout
belongs to ``--json``), and an import that takes long is named while it runs."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import traceback
from pathlib import Path

from zoo import settings, stopping

DISABLE_ENV = settings.ENVIRONMENT["disabled_plugins"]
SLOW_IMPORT_SECONDS = 3.0  # `zoo plugins` flags plugins slower than this to import


@contextlib.contextmanager
def slow_import_notice(name: str, where: str, after: float = SLOW_IMPORT_SECONDS):
    """Say on stderr which plugin is still importing after ``after`` seconds (a hang is not silent)."""
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


BUILD_TIMEOUT_ENV = settings.ENVIRONMENT["build_timeout"]


class PluginAbort(Exception):
    """A plugin's own ``sys.exit()`` or ``raise KeyboardInterrupt``, turned into an ordinary
    error of that plugin, so that it cannot end (or silently empty) the user's command."""

    def __init__(self, what: str, exc: BaseException):
        frames = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
        where = f" ({Path(frames[0].filename).name}:{frames[0].lineno})" if frames else ""
        super().__init__(what + where)


class _CtrlC:
    """Tells the user's Ctrl-C from a KeyboardInterrupt that plugin code raised itself: while
    plugin code runs in the main thread, SIGINT first sets a flag. In any other thread a
    KeyboardInterrupt can only come from code (Python delivers signals to the main thread)."""

    def __init__(self):
        self.pressed = False
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            try:
                self._previous = signal.getsignal(signal.SIGINT)
                signal.signal(signal.SIGINT, self._handler)
            except (ValueError, OSError, TypeError):
                self._previous = None

    def _handler(self, signum, frame):
        self.pressed = True
        if callable(self._previous):
            self._previous(signum, frame)
        raise KeyboardInterrupt

    def restore(self):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


@contextlib.contextmanager
def plugin_code():
    """Run a plugin's import, hook or ``build()``: its ``sys.exit(...)`` and the
    KeyboardInterrupt it raises itself become a ``PluginAbort``; the user's Ctrl-C stays one."""
    ctrl_c = _CtrlC()
    try:
        yield
    except SystemExit as exc:
        raise PluginAbort(f"called sys.exit({exc.code!r})", exc) from None
    except KeyboardInterrupt as exc:
        if ctrl_c.pressed or stopping.requested():  # the user's Ctrl-C, or a SIGTERM from outside
            raise
        raise PluginAbort("raised KeyboardInterrupt itself (not a Ctrl-C)", exc) from None
    finally:
        ctrl_c.restore()




def build_timeout() -> float:
    """Seconds a plugin's import, hook or one model's build may take (``ZOO_BUILD_TIMEOUT``):
    a finite number from above 0 to a day, else a one-line error."""

    return settings.current().build_timeout


def within(seconds: float, fn, hanging_message: str):
    """``fn()``'s result (or its exception), or ``TimeoutError(hanging_message)`` once it has run
    ``seconds``: it runs in a daemon thread, left behind (it cannot be killed) when it hangs,
    so one plugin's endless import, hook or ``build()`` cannot stop the rest of the zoo. The
    caller's thread waits: a Ctrl-C or SIGTERM stops it there, never blamed on the plugin."""
    outcome = {}

    def target():
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # noqa: BLE001  (handed to the caller's thread)
            outcome["error"] = exc

    stdout = sys.stdout
    worker = threading.Thread(target=target, name="zoo-plugin-build", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        sys.stdout = stdout  # the stuck thread's plugin_output_to_stderr() will never undo itself
        raise TimeoutError(hanging_message)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
