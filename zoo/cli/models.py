"""`zoo list`, `info`, `plugins`, `data`; and for plugin authors `new` and `check`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from zoo.cli.app import (
    CommandFailed,
    DataDirOpt,
    DatasetOpt,
    JsonOpt,
    ZooCommand,
    ZooError,
    _api,
    _flag,
    _opt,
    _print_json,
    _settings,
    _warn,
    command,
)
from zoo.isolation import SLOW_IMPORT_SECONDS
from zoo.scaffold import create


@command("list", cls=ZooCommand)
def list_models(
    patterns: Annotated[Optional[list[str]], typer.Argument(
        metavar="MODEL", help="Names or fnmatch patterns, e.g. '*cnn*'.", show_default=False)] = None,
    tag: _opt(str, "--tag", metavar="TAG", help="Only models with this tag.") = None,
    as_json: JsonOpt = False,
):
    """List the architectures: params and MACs computed from the built model."""
    from zoo.console import models_table, out

    warnings: list[str] = []
    rows = _api().list_models(patterns, tag, plugins_dir=_settings.get("plugins_dir"), warnings=warnings)
    for warning in warnings:
        _warn(warning)
    _print_json(rows) if as_json else out.print(models_table(rows))


@command(cls=ZooCommand)
def info(name: Annotated[str, typer.Argument(help="Model name, as `zoo list` shows it.")], as_json: JsonOpt = False):
    """Show a model card: what it teaches, every layer and the arithmetic behind it, recipes."""
    from zoo.console import model_card, out

    card = _api().info(name, plugins_dir=_settings.get("plugins_dir"))
    _print_json(card) if as_json else out.print(model_card(card))


@command(cls=ZooCommand)
def pretrained(as_json: JsonOpt = False):
    """List the models shipped trained with the zoo: accuracy, size, checksum, how each was trained.
    Every command that takes a run takes their names (zoo predict speedrun digit.png)."""
    from zoo.console import out, pretrained_table

    rows = _api().pretrained()
    _print_json(rows) if as_json else out.print(pretrained_table(rows))


@command(cls=ZooCommand)
def plugins(as_json: JsonOpt = False):
    """Show installed plugins, the hooks they implement, what they register, and failures."""
    from zoo.console import failures_table, out, plugins_table, safe

    data = _api().installed_plugins(plugins_dir=_settings.get("plugins_dir"))
    if as_json:
        return _print_json(data)
    out.print(plugins_table(data["plugins"]))
    if data["failures"]:
        out.print(failures_table(data["failures"]))
    for p in data["plugins"]:
        if p["import_seconds"] > SLOW_IMPORT_SECONDS:
            out.print(f"[yellow]Slow:[/] {safe(p['name'])} took {p['import_seconds']:.1f} s to import", highlight=False)
    if data["disabled"]:
        out.print(f"Disabled by ZOO_DISABLE_PLUGINS: {safe(', '.join(data['disabled']))}", highlight=False)


@command(cls=ZooCommand)
def data(
    words: Annotated[Optional[list[str]], typer.Argument(
        metavar="[NAME | add NAME DIR | remove NAME]",
        help="A dataset's name (or folder:DIR) to show; all datasets when left out. `add NAME DIR` names a folder "
             "of images DIR/<label>/*.png as a dataset; `remove NAME` forgets that name.")] = None,
    data_dir: DataDirOpt = None,
    verify: _flag("--verify", "Compare array checksums with the known ones.") = False,
    show: _opt(int, "--show", metavar="N", help="Write a PNG grid of N samples.") = None,
    out_path: _opt(Path, "--out", metavar="FILE", help="Where --show writes its PNG.") = None,
    as_json: JsonOpt = False,
):
    """Show a dataset: where it was found, sizes, class counts, pixel statistics; name a folder of images."""
    from zoo.console import data_table, datasets_table, out, safe

    api, plugins_dir = _api(), _settings.get("plugins_dir")
    words = list(words or [])
    if words and words[0] == "add":
        if len(words) != 3:
            raise ZooError("zoo data add NAME DIR: a name and a folder of images DIR/<label>/*.png")
        dataset = api.add_dataset(words[1], words[2], plugins_dir=plugins_dir)
        out.print(f"[bold]{safe(dataset.name)}[/]: {safe(dataset.description)}; "
                  f"{'×'.join(map(str, dataset.image_shape[:2]))} grayscale, classes "
                  f"{safe(', '.join(dataset.class_names))}. Use it as --dataset {safe(dataset.name)}.", highlight=False)
        return
    if words and words[0] == "remove":
        if len(words) != 2:
            raise ZooError("zoo data remove NAME: the name given by zoo data add")
        api.remove_dataset(words[1])
        out.print(f"{safe(words[1])} forgotten (its folder is untouched)", highlight=False)
        return
    if len(words) > 1:
        raise ZooError(f"zoo data takes one dataset name, not {len(words)} (zoo data add NAME DIR names a folder)")
    name = words[0] if words else None
    if name is None:
        rows = api.datasets(data_dir=data_dir, verify=verify, plugins_dir=plugins_dir)
        _print_json(rows) if as_json else out.print(datasets_table(rows))
        bad = [f"{r['name']} ({', '.join(k for k, v in r['verified'].items() if v is False)})" for r in rows
               if any(v is False for v in (r.get("verified") or {}).values())]
        if bad:
            raise CommandFailed(f"checksum mismatch: {'; '.join(bad)}")
        return
    found = api.datasets(name, data_dir=data_dir, verify=verify, show=show, out=out_path, plugins_dir=plugins_dir)
    _print_json(found) if as_json else out.print(data_table(found))
    bad = [k for k, v in (found.get("verified") or {}).items() if v is False]
    if bad:
        raise CommandFailed(f"{name}: checksum mismatch for {', '.join(bad)} ({found['source']})")


# -- plugin authors --------------------------------------------------------------------------------
@command(cls=ZooCommand)
def new(
    name: Annotated[str, typer.Argument(help="The new architecture's name, e.g. tiny-net.")],
    directory: Annotated[Path, typer.Option("--dir", metavar="DIR", help="Where to create the project folder "
                                                                         "(it is named mnist-zoo-NAME).")] = Path("."),
    path: _opt(Path, "--path", metavar="DIR", help="The project folder itself, e.g. ./lenet5.") = None,
):
    """Create an installable plugin project with one documented architecture and its test."""
    from zoo.console import out, safe

    root = safe(str(create(name, directory, path)))
    out.print(f"Created [bold]{root}[/]. Next:\n  pip install -e '{root}\\[test]'\n  zoo list\n  zoo check {name}\n"
              f"  (cd {root} && pytest)\n  zoo train {name}", highlight=False)


@command(cls=ZooCommand)
def check(
    names: Annotated[list[str], typer.Argument(help="Architectures to check (names or patterns).")],
    dataset: DatasetOpt = "mnist", data_dir: DataDirOpt = None, as_json: JsonOpt = False,
):
    """Check the plugin contract: metadata, build, output, recipes, overfitting a batch, save/load."""
    from zoo.console import out, safe

    reports = _api().check_models(names, dataset=dataset, data_dir=data_dir, plugins_dir=_settings.get("plugins_dir"))
    if as_json:
        _print_json([r.to_dict() for r in reports])
    else:
        for r in reports:
            for c in r.results:
                mark = "[yellow]⚠[/]" if c.warning else "[green]✓[/]" if c.ok else "[red]✗[/]"
                out.print(f"{mark} {safe(r.model)}: {safe(c.name)}: "
                          f"{safe(c.detail)}", highlight=False)
    failed = [r.model for r in reports if not r.ok]
    if failed:
        raise CommandFailed(f"contract not met by {', '.join(failed)}")
