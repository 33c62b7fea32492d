"""Commands on what was trained: `zoo report`, `evaluate`, `predict`, `explain` and `serve`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from zoo.cli.app import (
    DataDirOpt,
    JsonOpt,
    RunArg,
    ZooCommand,
    _api,
    _opt,
    _print_json,
    _report_line,
    _settings,
    command,
)


@command(cls=ZooCommand)
def report(
    sources: Annotated[list[Path], typer.Argument(
        metavar="RUN_DIRS|COMPARE_DIR...", show_default=False,
        help="Run directories, or folders holding them such as a comparison's folder.")],
    out_dir: _opt(Path, "-o", "--out", metavar="DIR",
                  help="Where the site goes (default: report/ inside the one folder given, else ./report).") = None,
    title: _opt(str, "--title", metavar="TEXT", help="The index page's heading.") = None,
    digit: Annotated[int, typer.Option("--digit", min=0, metavar="N",
                                       help="The test image whose feature maps every model page shows.")] = 0,
    data_dir: DataDirOpt = None,
    margin: Annotated[float, typer.Option(
        "--margin", metavar="POINTS", help="How close, in accuracy points, a mean must be shown to be to an "
        "article's published run for 'consistent' (an equivalence test, TOST).")] = 0.2,
    in_browser: Annotated[bool, typer.Option("--in-browser", metavar="", help="Add a 'draw a digit' page whose "
        "models run in the browser (ONNX Runtime Web, offline, no server; pip install -e '.[export]').")] = False,
    as_json: JsonOpt = False,
):
    """Write a web page of saved runs: the table with its statistics, figures, and a page per model
    (card, recipe, mistakes, filters, feature maps, saliency). Opens from disk, offline."""
    written = _api().report(sources, out_dir, title=title, digit=digit, data_dir=data_dir, margin=margin,
                            in_browser=in_browser, plugins_dir=_settings.get("plugins_dir"))
    if as_json:
        return _print_json({"index": str(written.index), "pages": [str(p) for p in written.pages],
                            "notes": written.notes})
    _report_line(written, written.index.parent)


@command(cls=ZooCommand)
def evaluate(
    run: RunArg,
    dataset: _opt(str, "--dataset", metavar="NAME", help="Test on another dataset: a name (zoo data), or "
                  "folder:DIR for a folder of images DIR/<label>/*.png, e.g. digits drawn in zoo serve. Every image "
                  "of it is then the test set, preprocessed as zoo predict does.") = None,
    data_dir: DataDirOpt = None, as_json: JsonOpt = False,
):
    """Evaluate a saved run's model on its dataset's test set again, or on another dataset."""
    from zoo.console import out, pct, safe

    result = _api().evaluate(run, dataset=dataset, data_dir=data_dir, plugins_dir=_settings.get("plugins_dir"))
    if as_json:
        return _print_json(result)
    tested = result.get("tested_on")
    where = (f"all {result['test_images']:,} images of {result['dataset']} (trained on {tested['trained_on']}: none "
             f"seen in training)" if tested else f"{result['test_images']:,} test images")
    out.print(f"[bold]{safe(result['model'])}[/] ({safe(str(run))}): test accuracy {pct(result['test_accuracy'])}, "
              f"loss {result['test_loss']:.4f} on {safe(where)}; recorded at training time: "
              f"{pct(result['recorded_test_accuracy'])}" + ("" if tested else f"; article: {pct(result['published_accuracy'])}"),
              highlight=False)
    if tested:
        out.print(f"Each image {safe(tested['preprocessing'])}."
                  + (f" Left out: {safe(', '.join(tested['skipped'][:5]))}." if tested["skipped"] else ""),
                  highlight=False)


@command(cls=ZooCommand)
def predict(
    run: RunArg,
    images: Annotated[list[Path], typer.Argument(help="PNG/JPEG/BMP/… images of single digits.")],
    save_preprocessed: _opt(Path, "--save-preprocessed", metavar="DIR",
                            help="Write each image as the model sees it (28×28 PNG) into this folder.") = None,
    as_json: JsonOpt = False,
):
    """Read your own handwritten digits: grayscale, invert, crop, fit 20×20, centre in 28×28, predict."""
    from zoo.console import err, out, safe

    answers = _api().predict(run, images, save_preprocessed=save_preprocessed,
                             plugins_dir=_settings.get("plugins_dir"))
    for answer in answers:
        if answer["digit"] is None:
            err.print(f"[bold red]Error:[/] {safe(answer['error'])}", highlight=False, soft_wrap=True)
        elif not as_json:
            guesses = ", ".join(f"{safe(t['label'])} ({t['probability'] * 100:.1f}%)" for t in answer["top3"])
            out.print(f"{safe(answer['image'])}: [bold]{safe(answer['label'])}[/]   top 3: {guesses}", highlight=False)
    if as_json:
        _print_json(answers)
    if any(a["digit"] is None for a in answers):
        raise typer.Exit(1)


@command(cls=ZooCommand)
def explain(
    run: RunArg,
    image: Annotated[str, typer.Argument(
        help="An image file of one digit (read as zoo predict reads it), or a number: that test-set image.")],
    out_dir: _opt(Path, "--out", metavar="DIR",
                  help="Where the PNGs go (default: explain-IMAGE inside the run directory).") = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
):
    """What the model sees in one digit: its top 3, every convolution's feature maps, and a saliency map."""
    from zoo.console import out, safe

    result = _api().explain(run, image, out=out_dir or True, data_dir=data_dir,
                            plugins_dir=_settings.get("plugins_dir"))
    if as_json:
        return _print_json(result.to_dict())
    guesses = ", ".join(f"{safe(t['label'])} ({t['probability'] * 100:.1f}%)" for t in result.top3)
    truth = "" if result.true_label is None else f" (true label: {safe(result.true_label)})"
    out.print(f"{safe(result.image)}: [bold]{safe(result.label)}[/]{truth}   top 3: {guesses}", highlight=False)
    for note in result.notes:
        out.print(f"[dim]{safe(note)}[/]", highlight=False)
    saliency = " and a saliency map" if result.saliency is not None else ""
    folder = Path(result.files[0]).parent if result.files else out_dir
    out.print(f"{len(result.feature_maps)} feature-map figure(s){saliency} "
              f"in [bold]{safe(str(folder))}[/]", highlight=False)


@command("export", cls=ZooCommand)
def export_model(
    run: RunArg,
    fmt: Annotated[str, typer.Option("--format", metavar="onnx|litert|saved_model",
                                     help="ONNX (onnxruntime, browsers), LiteRT (phones) or a SavedModel.")] = "onnx",
    out: _opt(Path, "-o", "--out", metavar="FILE",
              help="Where it goes (default: NAME.onnx, NAME.tflite or NAME-saved_model/ here).") = None,
    dataset: _opt(str, "--dataset", metavar="NAME", help="Also check it on another dataset, e.g. folder:DIR "
                  "(the class's drawings).") = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
):
    """Take a model elsewhere: export it, then check the file with its own runtime against Keras on
    every test image (pip install -e '.[export]')."""
    from zoo.console import out as console
    from zoo.console import safe

    result = _api().export(run, fmt, out, dataset=dataset, data_dir=data_dir,
                           plugins_dir=_settings.get("plugins_dir"))
    if as_json:
        return _print_json(result)
    console.print(f"[bold]{safe(result['model'])}[/] exported to {safe(result['file'])} ({result['format']}); "
                  f"preprocessing and checks in {safe(result['metadata'])}", highlight=False)
    for check in result["parity"]:
        console.print(f"  {check['agreement']:.2%} top-1 agreement with Keras on {check['images']:,} images of "
                      f"{safe(check['on'])}; largest probability difference {check['max_probability_difference']:.1e}",
                      highlight=False)


@command(cls=ZooCommand)
def serve(
    runs: Annotated[Optional[list[Path]], typer.Argument(
        metavar="[RUNS…|COMPARE_DIR]", help="Run folders, a comparison's folder or pretrained models' names "
        "(default: every pretrained model: zoo pretrained lists them).")] = None,
    host: _opt(str, "--host", metavar="ADDRESS", help="Where to listen: 127.0.0.1 (this machine only) or "
               "0.0.0.0 (the classroom's network; anyone on it can open the page).") = "127.0.0.1",
    port: _opt(int, "--port", metavar="N", help="The port to listen on.") = 8000,
    collect_into: _opt(Path, "--collect-into", metavar="DIR", help="Save drawings labelled on the page into "
                       "DIR/<label>/*.png: a dataset for zoo evaluate RUN --dataset folder:DIR.") = None,
):
    """The classroom page: draw a digit and every model answers, side by side (pip install 'mnist-zoo[serve]')."""
    _api().serve(runs or (), host=host, port=port, collect_into=collect_into, plugins_dir=_settings.get("plugins_dir"))
