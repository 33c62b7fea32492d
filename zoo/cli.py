"""The ``zoo`` command.

Nothing heavy is imported at module level: ``zoo --help`` and argument errors answer
before TensorFlow loads. Every user-facing failure is a ``ZooError``, which ``main``
turns into one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

# Quiet TensorFlow's C++ start-up chatter before anything can import it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import typer  # noqa: E402
from typer.core import TyperGroup  # noqa: E402

from zoo.errors import ZooError  # noqa: E402


class ZooGroup(TyperGroup):
    """Turns a ZooError from any command into one line on stderr and its exit status."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ZooError as exc:
            from zoo.console import err

            err.print(f"[bold red]Error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    name="zoo",
    cls=ZooGroup,
    help="A teaching model zoo of classic MNIST classifiers: list, explain, train, compare, predict.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
)

_settings: dict = {}

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON and nothing else on stdout.")]
DataDirOpt = Annotated[Optional[str], typer.Option(
    "--data-dir", envvar="ZOO_DATA_DIR", show_envvar=True,
    help="Folder holding mnist.npz (or the IDX files); default: Keras's cache, then its download.")]


@app.callback()
def _root(
    plugins_dir: Annotated[Optional[str], typer.Option(
        "--plugins-dir", envvar="ZOO_PLUGINS_DIR", show_envvar=True,
        help="Also load plugins from the .py files in this folder.")] = None,
):
    _settings["plugins_dir"] = plugins_dir


def _zoo(warn: bool = True):
    from zoo.backend import import_backend_quietly
    from zoo.console import err
    from zoo.plugins import get_zoo

    import_backend_quietly()
    zoo = get_zoo(_settings.get("plugins_dir"))
    if warn:
        for failure in zoo.failures:
            err.print(f"[yellow]Warning:[/] {failure.line()} (see `zoo plugins`)", highlight=False, soft_wrap=True)
    return zoo


def _print_json(data) -> None:
    from zoo.files import _plain

    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=_plain) + "\n")


# -- registry --------------------------------------------------------------------
@app.command("list")
def list_models(
    patterns: Annotated[Optional[list[str]], typer.Argument(
        help="Names or fnmatch patterns, e.g. '*cnn*'.", show_default=False)] = None,
    tag: Annotated[Optional[str], typer.Option("--tag", help="Only models with this tag.")] = None,
    as_json: JsonOpt = False,
):
    """List the architectures: params and MACs computed from the built model."""
    from zoo.cards import summary_row
    from zoo.console import models_table, out
    from zoo.registry import select
    from zoo.stats import architecture_stats

    zoo = _zoo()
    chosen = select(zoo.architectures, patterns or (), tag)
    rows = [summary_row(arch, architecture_stats(arch)) for arch in chosen]
    if as_json:
        _print_json(rows)
    else:
        out.print(models_table(rows))


@app.command()
def info(
    name: Annotated[str, typer.Argument(help="Model name, as `zoo list` shows it.")],
    as_json: JsonOpt = False,
):
    """Show a model card: what it teaches, every layer and the arithmetic behind it, recipes."""
    from zoo.cards import card
    from zoo.console import model_card, out
    from zoo.stats import architecture_stats

    arch = _zoo().architecture(name)
    data = card(arch, architecture_stats(arch))
    if as_json:
        _print_json(data)
    else:
        out.print(model_card(data))


@app.command()
def plugins(as_json: JsonOpt = False):
    """Show installed plugins, the hooks they implement, what they register, and failures."""
    import dataclasses

    from zoo.console import failures_table, out, plugins_table

    zoo = _zoo(warn=False)
    data = {
        "plugins": [dataclasses.asdict(p) for p in zoo.plugins],
        "failures": [dataclasses.asdict(f) for f in zoo.failures],
        "disabled": zoo.disabled,
    }
    if as_json:
        _print_json(data)
        return
    out.print(plugins_table(data["plugins"]))
    if zoo.failures:
        out.print(failures_table(data["failures"]))
    if zoo.disabled:
        out.print(f"Disabled by ZOO_DISABLE_PLUGINS: {', '.join(zoo.disabled)}")


# -- data ------------------------------------------------------------------------
@app.command()
def data(
    name: Annotated[Optional[str], typer.Argument(help="Dataset name; all datasets when left out.")] = None,
    data_dir: DataDirOpt = None,
    verify: Annotated[bool, typer.Option("--verify", help="Compare array checksums with the known ones.")] = False,
    show: Annotated[Optional[int], typer.Option("--show", help="Write a PNG grid of N samples.")] = None,
    out_path: Annotated[Optional[Path], typer.Option("--out", help="Where --show writes its PNG.")] = None,
    as_json: JsonOpt = False,
):
    """Show a dataset: where it was found, sizes, class counts, pixel statistics."""
    from zoo import data as datamod
    from zoo.console import data_table, datasets_table, out

    zoo = _zoo()
    if name is None:
        rows = []
        for ds in zoo.datasets.values():
            found = datamod.locate(ds, data_dir)
            rows.append({"name": ds.name, "description": ds.description, "classes": len(ds.class_names),
                         "license": ds.license,
                         "found": f"{found[0]}: {found[2] if found[1] == 'npz' else found[2]['x_train'].parent}"
                         if found else None})
        _print_json(rows) if as_json else out.print(datasets_table(rows))
        return
    arrays = datamod.load(zoo.dataset(name), data_dir)
    info_ = datamod.summary(arrays)
    if verify:
        info_["verified"] = datamod.verify(arrays)
    if show:
        path = out_path or Path(f"{name}-samples.png")
        info_["grid"] = str(datamod.save_grid(arrays, show, path))
    if as_json:
        _print_json(info_)
    else:
        out.print(data_table(info_))
    if verify and not all(v is not False for v in info_["verified"].values()):
        bad = ", ".join(k for k, v in info_["verified"].items() if v is False)
        raise ZooError(f"{name}: checksum mismatch for {bad} ({arrays.source})", exit_code=1)


def main():
    app()


if __name__ == "__main__":
    main()
