"""The ``zoo`` command. It parses, calls the Python API (``zoo.api``) and renders — nothing else.

Nothing heavy is imported at module level: ``zoo --help`` and argument errors answer
before TensorFlow loads. ``app.py`` holds the Typer app and the shared options; the
commands are in ``models.py`` (the registry, data, plugin authors), ``training.py``
(train, compare) and ``trained.py`` (report, evaluate, predict, explain).
"""

from zoo import stopping
from zoo.cli import models, trained, training  # noqa: F401  (each registers its commands on the app)
from zoo.cli.app import app
from zoo.keras_glue import exit_promptly


def main():
    """The console script: run the command, then leave without TensorFlow's teardown."""
    # Ctrl-C and SIGTERM (docker stop, a job scheduler's time limit, kill) save what finished,
    # and are remembered, so a stop that lands where Python swallows it is not lost.
    stopping.install()
    try:
        app()
        code = 0
    except SystemExit as stop:  # how Typer ends every command, successful or not
        code = stop.code
    except KeyboardInterrupt:  # a stop that reached the top: no traceback
        code = 130
    # a command stopped from outside ends with that signal's status, whatever it printed
    code = stopping.exit_code() or code
    exit_promptly(code)


if __name__ == "__main__":
    main()
