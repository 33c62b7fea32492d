"""The ``zoo`` command's Typer app, the options its commands share, and small helpers.

The commands live beside this file, grouped by what they work on; each parses its options,
calls ``zoo.api`` and renders. Every user-facing failure is a ``ZooError``, which
``ZooGroup`` turns into one line on stderr and its exit status.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

# Quiet TensorFlow's C++ start-up chatter before anything can import it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import typer  # noqa: E402
from typer.core import TyperCommand, TyperGroup  # noqa: E402

from zoo.errors import Interrupted, NotSaved, ZooError  # noqa: E402
from zoo.feedback import Feedback
from zoo.files import json_text


class _FlagHelp:
    """``--help`` is a flag: no ``<bool>`` beside it (``metavar``, click's public attribute)."""

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option


class ZooCommand(_FlagHelp, TyperCommand):
    pass


class CommandFailed(ZooError):
    """A command that ran and found something wrong: a checksum, a contract, failed runs (exit 1)."""


# A ZooError's exit status: 2 (bad input) unless its kind says otherwise.
EXIT_CODES = ((Interrupted, 130), (CommandFailed, 1), (NotSaved, 1))
# The Python API's parameter names that the command line spells otherwise than --name-with-dashes.
FLAGS = {"patterns": "MODEL…", "run_dirs": "--from-runs", "threads": "--threads-per-worker"}


def flag_for(parameter: str) -> str:
    return FLAGS.get(parameter, "--" + parameter.replace("_", "-"))


def exit_code_of(error: ZooError) -> int:
    return next((code for kind, code in EXIT_CODES if isinstance(error, kind)), 2)


class ZooGroup(_FlagHelp, TyperGroup):
    """Turns a ZooError from any command into one line on stderr and its exit status."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ZooError as exc:
            from zoo.console import err, safe

            said = exc.phrased(flag_for(exc.parameter)) if exc.parameter else str(exc)
            err.print(f"[bold red]Error:[/] {safe(said)}", highlight=False, soft_wrap=True)
            raise typer.Exit(exit_code_of(exc)) from None
        except OSError as exc:  # the file system said no (a missing or read-only folder, a full disk): one line
            from zoo.console import err, safe

            where = f"{exc.filename}: " if exc.filename else ""
            err.print(f"[bold red]Error:[/] {safe(where + (exc.strerror or str(exc)))}", highlight=False,
                      soft_wrap=True)
            raise typer.Exit(1) from None


app = typer.Typer(name="zoo", cls=ZooGroup, no_args_is_help=True, rich_markup_mode="rich",
                  pretty_exceptions_enable=False, add_completion=False,
                  help="A teaching model zoo of classic MNIST classifiers: list, explain, train, compare, predict.")
command = app.command
_settings: dict = {}
BACKENDS = ("tensorflow", "jax", "torch")


def _flag(name: str, help: str):
    return Annotated[bool, typer.Option(name, help=help, metavar="")]


def _opt(kind, *names: str, metavar: str, help: str, **more):
    return Annotated[Optional[kind], typer.Option(*names, metavar=metavar, help=help, **more)]


JsonOpt = _flag("--json", "Print machine-readable JSON and nothing else on stdout.")
DataDirOpt = _opt(str, "--data-dir", metavar="DIR", envvar="ZOO_DATA_DIR", show_envvar=True,
                  help="Folder holding mnist.npz (or the IDX files); default: Keras's cache, then its download.")
EpochsOpt = _opt(int, "--epochs", metavar="N", help="Override the recipe's epochs.")
BatchOpt = _opt(int, "--batch-size", metavar="N", help="Override the recipe's batch size.")
SeedOpt = Annotated[int, typer.Option("--seed", metavar="N", help="Seed for the split, weight init and shuffling.")]
LimitOpt = _opt(int, "--limit", metavar="N", help="Train on a stratified subset of N training images (quick runs).")
ValidateOpt = Annotated[str, typer.Option(
    "--validate-on", metavar="val|test", help="'val': a held-out part of the training set (honest). 'test': the "
    "test set, as the articles did (leaks: you pick on the numbers you report).")]
DatasetOpt = Annotated[str, typer.Option("--dataset", metavar="NAME", help="Dataset name (zoo data lists them), or "
                                         "folder:DIR for a folder of images DIR/<label>/*.png.")]
PrecisionOpt = Annotated[str, typer.Option(
    "--precision", metavar="POLICY", help="float32 (as the articles), mixed_bfloat16 (CPUs with AMX or AVX512-BF16) "
    "or mixed_float16 (GPUs): faster where the hardware has the units; changes the numbers.")]
RunsDirOpt = Annotated[Path, typer.Option("--runs-dir", metavar="DIR", envvar="ZOO_RUNS_DIR",
                                          help="Where run directories go.")]
TensorBoardOpt = _flag("--tensorboard", "Also write TensorBoard logs into each run directory; view them with "
                                        "`tensorboard --logdir runs` (pip install 'mnist-zoo\\[tensorboard]').")
RunArg = Annotated[Path, typer.Argument(help="A run directory (holding run.json and model.keras), or a pretrained "
                                              "model's name (zoo pretrained lists them).")]
from zoo.types import DEFAULT_SEED  # noqa: E402,F401  (for the commands; zoo.types imports nothing heavy)


@app.callback()
def _root(
    plugins_dir: _opt(str, "--plugins-dir", metavar="DIR", envvar="ZOO_PLUGINS_DIR", show_envvar=True,
                      help="Also load plugins from the .py files in this folder.") = None,
    backend: _opt(str, "--backend", metavar="NAME", envvar="KERAS_BACKEND", show_envvar=True,
                  help="Keras backend: tensorflow (default), jax (pip install 'mnist-zoo\\[jax]') or torch "
                       "(pip install 'mnist-zoo\\[torch]').") = None,
):
    _settings["plugins_dir"] = plugins_dir
    if backend:
        if backend not in BACKENDS:
            raise ZooError(f"must be one of {', '.join(BACKENDS)}, not {backend!r}", parameter="backend")
        os.environ["KERAS_BACKEND"] = backend  # read by Keras when it is first imported


def _api():
    from zoo import api

    return api


def _warn(text: str) -> None:
    Feedback().warn(text)


def _print_json(data) -> None:
    sys.stdout.write(json_text(data))




def _report_line(written, folder: Path) -> None:
    from zoo.console import err, safe

    left_out = f"; {len(written.notes)} section(s) left out, each page says why" if written.notes else ""
    err.print(f"[bold]Report:[/] {len(written.pages)} model page(s) in {safe(str(folder))}{left_out}. "
              f"Open {safe(written.index.resolve().as_uri())}", highlight=False, soft_wrap=True)
