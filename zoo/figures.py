"""Figures for runs and comparisons, drawn with matplotlib (Agg, no screen needed)."""

from __future__ import annotations

import math
import sys

import matplotlib

if "ipykernel" not in sys.modules:  # a notebook keeps its inline backend; elsewhere no screen is needed
    matplotlib.use("Agg")
from pathlib import Path

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator

from zoo import runs
from zoo.errors import OptionError
from zoo.files import (
    atomic_savefig,  # noqa: E402
    check_output_file,
)
from zoo.imaging import mosaic  # noqa: E402
from zoo.types import name_of  # noqa: E402


def _save(fig, path, layout=True):
    """Write ``fig`` to ``path`` and return the path; with no path, return the figure itself
    (closed in pyplot, so a notebook shows it once: as the cell's value)."""
    if layout:
        fig.tight_layout()
    if path is not None:
        atomic_savefig(fig, path)
    plt.close(fig)
    return fig if path is None else path


def _accuracy_limits(ax) -> None:
    """An accuracy axis (in %) never runs past 100 or below 0, whatever the margins."""
    low, high = ax.get_ylim()
    ax.set_ylim(max(low, 0.0), min(high, 100.5))


def _shown(key: str, values):
    """Values as a figure shows them: accuracies in %, as every table does; losses as they are."""
    return [v * 100 for v in values] if "accuracy" in key else list(values)


def _label(key: str) -> str:
    return f"{key}, %" if "accuracy" in key else key


def plain_number(value: float, _position=None) -> str:
    """A tick label without powers of ten: 0.3, 5, 20, 1k, 25k, 10M."""
    if value <= 0:
        return ""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def _plain_log_ticks(ax, axis: str = "x") -> None:
    """Label a log axis in plain numbers (1, 2, 5, 10, …) instead of 3×10⁰."""
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_formatter(FuncFormatter(plain_number))
    target.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
    target.set_minor_formatter(FuncFormatter(plain_number))


def curves(history: dict, path, title: str, steps: dict | None = None):
    """Loss and accuracy, training and validation, as article 004 plots them; with the
    training metrics sampled within each epoch as a thin line, so a one-epoch run shows
    how it learned instead of a lone dot."""
    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((ax_loss, "loss", "loss"), (ax_acc, "accuracy", "accuracy")):
        if steps and steps.get(key):
            ax.plot(steps["position"], _shown(key, steps[key]), lw=1, alpha=0.6, color="tab:blue",
                    label=f"train {label} (running, within epochs)")
        if key in history:
            ax.plot(epochs, _shown(key, history[key]), marker="o", color="tab:blue",
                    ls="-" if len(epochs) > 1 else "none", label=f"train {label} (end of epoch)")
        if f"val_{key}" in history:
            ax.plot(epochs, _shown(key, history[f"val_{key}"]), marker="s", color="tab:orange",
                    ls="-" if len(epochs) > 1 else "none", label=f"validation {label}")
        _epoch_axis(ax, len(epochs))
        ax.set_ylabel(_label(label))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")  # matplotlib's "best" keeps clear of the points
        if key == "accuracy":
            _accuracy_limits(ax)
    fig.suptitle(f"{title}: learning curves")
    return _save(fig, path)


def confusion(matrix: np.ndarray, class_names, path, title: str):
    """Counts of true (rows) against predicted (columns) classes on the test set."""
    fig, ax = plt.subplots(figsize=(7, 6))
    shown = np.log1p(matrix)  # the diagonal dwarfs the mistakes; a log scale shows both
    image = ax.imshow(shown, cmap="Blues")
    ticks = [t for t in (1, 10, 100, 1000, 10000) if t <= max(int(matrix.max()), 1)]
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, ticks=np.log1p(ticks))
    bar.ax.set_yticklabels([f"{t:,}" for t in ticks])
    bar.set_label("test images (log scale)")
    k = len(class_names)
    ticks = range(k)
    ax.set_xticks(ticks, [str(c)[:10] for c in class_names], rotation=45 if k and len(str(class_names[0])) > 2 else 0)
    ax.set_yticks(ticks, [str(c)[:10] for c in class_names])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = shown.max() * 0.6
    for i in range(k):
        for j in range(k):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if shown[i, j] > threshold else "black")
    accuracy = matrix.trace() / max(matrix.sum(), 1)
    ax.set_title(f"{title}: test confusion matrix ({accuracy * 100:.2f}% correct)")
    return _save(fig, path)


def mistakes(x_test, y_test, predicted, class_names, path, title: str, limit: int = 24):
    """A grid of misclassified test images, titled 'Actual: 7 Pred: 2' as in article 003."""
    wrong = np.flatnonzero(predicted != y_test)[:limit]
    cols = 6
    rows = max(1, math.ceil(len(wrong) / cols))
    # One image of tiles on one set of axes: 24 separate axes cost three times as much to
    # draw, and this runs at the end of every training run.
    h, w = x_test.shape[1:3]
    gap_x, gap_y = w // 4, h // 2 + 2  # room between tiles for each tile's two-line title
    mosaic = np.full((rows * (h + gap_y), cols * (w + gap_x)), np.nan)
    for n, i in enumerate(wrong):
        top, left = (n // cols) * (h + gap_y) + gap_y, (n % cols) * (w + gap_x) + gap_x // 2
        mosaic[top:top + h, left:left + w] = x_test[i].reshape(h, w)
    width = cols * 1.6
    height = 0.96 * width * mosaic.shape[0] / mosaic.shape[1] + 0.6  # the tiles' aspect, plus the title
    fig, ax = plt.subplots(figsize=(width, height))
    ax.imshow(mosaic, cmap=matplotlib.colormaps["Greys_r"].with_extremes(bad="white"), interpolation="none")
    ax.axis("off")
    for n, i in enumerate(wrong):
        ax.text((n % cols) * (w + gap_x) + gap_x // 2 + w / 2, (n // cols) * (h + gap_y) + gap_y - 1,
                f"Actual: {class_names[y_test[i]]}\nPred: {class_names[predicted[i]]}", fontsize=8,
                ha="center", va="bottom")
    total = int((predicted != y_test).sum())
    fig.suptitle(f"{title}: {total} of {len(y_test)} test images misclassified"
                 + (f" (first {len(wrong)} shown)" if total > len(wrong) else ""), fontsize=10)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - 0.5 / height)
    return _save(fig, path, layout=False)


def sample_grid(arrays, n: int, path, seed: int = 0):
    """A PNG grid of ``n`` training images with their labels, as articles 002 and 004 plot them."""
    if n < 1:
        raise OptionError("needs a positive number of images", parameter="show")
    if path is not None:
        check_output_file(path)
    idx = np.random.default_rng(seed).choice(len(arrays.x_train), size=min(n, len(arrays.x_train)), replace=False)
    cols = min(10, len(idx))
    rows = math.ceil(len(idx) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.2, rows * 1.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    names = arrays.dataset.class_names
    for ax, i in zip(axes.flat, idx):
        ax.imshow(arrays.x_train[i], cmap="gray_r", interpolation="none")
        label = int(arrays.y_train[i])
        ax.set_title(f"{label}: {names[label]}" if names[label] != str(label) else str(label), fontsize=8)
    fig.suptitle(f"{arrays.dataset.name}: {len(idx)} training images", fontsize=10)
    return _save(fig, path)


def _epoch_axis(ax, epochs: int) -> None:
    """An x axis in epochs from 0 to the last; a one-epoch run's is read in steps within it."""
    ax.set_xlim(0, max(epochs, 1) * 1.02)
    if epochs <= 1:
        ax.set_xlabel("share of the epoch (training sampled within it; validation at its end)")
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    else:
        ax.set_xlabel("epochs")
        ax.xaxis.get_major_locator().set_params(integer=True)


def draw_run(run_dir, record, arrays=None) -> list[str]:
    """A finished (or interrupted) run's figures, from its record and saved files.

    Returns the names of the figures written. ``arrays`` (the run's dataset) gives the
    test images for the mistakes grid; without it that figure is left out.
    """
    run_dir = Path(run_dir)
    written = []
    history = runs.read_history(run_dir)
    if history and history.get("loss"):
        curves(history, run_dir / "curves.png", record.model, runs.read_steps(run_dir))
        written.append("curves.png")
    if record.confusion_matrix is not None:
        confusion(np.array(record.confusion_matrix), record.class_names, run_dir / "confusion.png", record.model)
        written.append("confusion.png")
        predictions = runs.read_predictions(run_dir, record.split.test)
        if arrays is not None and predictions is not None and len(predictions["predicted"]) == len(arrays.y_test):
            mistakes(arrays.x_test, arrays.y_test, predictions["predicted"], record.class_names,
                     run_dir / "mistakes.png", record.model)
            written.append("mistakes.png")
    return written


def accuracy_chart(rows: list[dict], path, title: str):
    """Each model's test accuracy: every seed as a dot, the mean as a bar end, its 95% interval.

    Meaningful after one epoch as after fifty, and honest: overlapping intervals are
    visible at a glance.
    """
    rows = [r for r in rows if r.get("mean") is not None]
    rows = sorted(rows, key=lambda r: r["mean"])
    fig, ax = plt.subplots(figsize=(9, 1.0 + 0.55 * len(rows)))
    lows = [r["ci_low"] * 100 for r in rows] + [a * 100 for r in rows for a in r["accuracies"]]
    highs = [r["ci_high"] * 100 for r in rows] + [a * 100 for r in rows for a in r["accuracies"]]
    lows += [r["published_accuracy"] * 100 for r in rows if r.get("vs_published") is not None]
    highs += [r["published_accuracy"] * 100 for r in rows if r.get("vs_published") is not None]
    span = max(highs) - min(lows) or 1.0
    left, right = max(min(lows) - 0.08 * span, 0.0), min(max(highs) + 0.35 * span, 100.0)
    starred = False
    for y, row in enumerate(rows):
        low, high = row["ci_low"] * 100, row["ci_high"] * 100
        ax.plot([low, high], [y, y], color="tab:blue", lw=3, alpha=0.35, solid_capstyle="butt")
        ax.plot(row["mean"] * 100, y, marker="|", color="tab:blue", markersize=18, mew=2.5)
        ax.scatter([a * 100 for a in row["accuracies"]], [y] * len(row["accuracies"]), color="black", s=14, zorder=3)
        label = f"{row['mean'] * 100:.2f}%" + (f" ± {row['std'] * 100:.2f}" if row.get("std") else "")
        if right - high >= 0.25 * span:  # room on the right, else on the left (the axis stops at 100%)
            ax.annotate(label, (high, y), xytext=(6, 0), textcoords="offset points", va="center", fontsize=8)
        else:
            ax.annotate(label, (low, y), xytext=(-6, 0), textcoords="offset points", va="center", ha="right",
                        fontsize=8)
        if row.get("vs_published") is not None:  # only runs of the article's whole recipe
            ax.plot(row["published_accuracy"] * 100, y, marker="*", color="tab:orange", markersize=10, zorder=4)
            starred = True
    ax.set_yticks(range(len(rows)), [f"{name_of(r)} (n={r['n']})" for r in rows])
    ax.set_xlabel("test accuracy, % (dots: seeds; bar: 95% interval; |: mean"
                  + ("; ★: published" if starred else "") + ")")
    ax.grid(axis="x", alpha=0.3)
    if right - max(highs) < 0.25 * span:  # labels on the left need room there
        left = max(min(lows) - 0.35 * span, 0.0)
    ax.set_xlim(left, right if right > max(highs) else max(highs) + 0.02 * span)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both cost (lower) and accuracy (higher)."""
    front = []
    for i, (cost, acc) in enumerate(points):
        if not any((c <= cost and a >= acc) and (c < cost or a > acc) for j, (c, a) in enumerate(points) if j != i):
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def _label_points(ax, points, labels):
    """Name each point; models of similar cost and accuracy would print their names over
    each other, so adjustText moves the names apart, with a thin line back to the point."""
    from adjustText import adjust_text

    texts = [ax.text(x, y, f" {label}", fontsize=8) for (x, y), label in zip(points, labels)]
    if len(texts) > 1:
        adjust_text(texts, x=[p[0] for p in points], y=[p[1] for p in points], ax=ax,
                    arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.5})


def pareto(rows: list[dict], path):
    """Test accuracy (mean, 95% interval) against training time, training compute (the same
    on every machine) and MACs per image; the front marked on each."""
    rows = [r for r in rows if r.get("mean") is not None]
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
    for ax, key, label in ((axes[0], "training_seconds", "training time per run, s (median)"),
                           (axes[1], "training_tflop", "training compute per run, TFLOP (6 × MACs × images)"),
                           (axes[2], "macs", "multiply-accumulates per image")):
        shown = [r for r in rows if r.get(key)]
        points = [(r[key], r["mean"] * 100) for r in shown]
        for r, (x, y) in zip(shown, points):
            ax.errorbar(x, y, yerr=[[y - r["ci_low"] * 100], [r["ci_high"] * 100 - y]], fmt="o", color="tab:blue",
                        capsize=3)
        front = pareto_front(points)
        if len(front) > 1:
            ax.plot([points[i][0] for i in front], [points[i][1] for i in front], "--", color="tab:red",
                    label="Pareto front")
            ax.legend(fontsize=8, loc="lower right")
        ax.set_xscale("log")
        _plain_log_ticks(ax)
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy, %")
        ax.grid(alpha=0.3, which="both")
        _label_points(ax, points, [name_of(r) for r in shown])
    fig.suptitle("What accuracy costs: the models no other beats on both axes are on the front")
    return _save(fig, path)


def feature_maps(name: str, maps: np.ndarray, path, title: str, limit: int = 64):
    """One convolution's output for one digit: a small image per filter (up to ``limit``)."""
    filters = min(maps.shape[-1], limit)
    cols = min(8, filters)
    rows = math.ceil(filters / cols)
    h, w = maps.shape[:2]
    gap = max(1, h // 8)
    mosaic = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan)
    for f in range(filters):
        tile = maps[..., f].astype("float64")
        span = tile.max() - tile.min()
        tile = (tile - tile.min()) / span if span > 0 else np.zeros_like(tile)  # each filter on its own scale
        top, left = (f // cols) * (h + gap), (f % cols) * (w + gap)
        mosaic[top:top + h, left:left + w] = tile
    fig, ax = plt.subplots(figsize=(cols * 1.1, rows * 1.1 * h / w + 0.6))
    ax.imshow(mosaic, cmap=matplotlib.colormaps["viridis"].with_extremes(bad="white"), interpolation="nearest")
    ax.axis("off")
    shown = f"{filters} of {maps.shape[-1]} filters" if filters < maps.shape[-1] else f"{filters} filters"
    ax.set_title(f"{title}\n{name}: {h}×{w}, {shown} (each scaled to its own range)", fontsize=9)
    return _save(fig, path)


def saliency(digit: np.ndarray, weights: np.ndarray, path, title: str):
    """The digit, the saliency map, and the two overlaid."""
    fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.9))
    axes[0].imshow(digit, cmap="gray_r")
    axes[0].set_title("what the model sees", fontsize=9)
    shown = axes[1].imshow(weights, cmap="hot", vmin=0, vmax=1)
    axes[1].set_title("|∂p / ∂pixel|", fontsize=9)
    fig.colorbar(shown, ax=axes[1], fraction=0.046, pad=0.04)
    axes[2].imshow(digit, cmap="gray_r")
    axes[2].imshow(weights, cmap="hot", alpha=0.55, vmin=0, vmax=1)
    axes[2].set_title("overlaid", fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def overlaid_curves(runs: dict[str, tuple[dict, dict | None]], path):
    """Every model's learning, on shared axes: training accuracy and loss as sampled within
    epochs (a thin line, so a one-epoch run still shows how it learned) and validation at
    each epoch's end (markers), one colour per model."""
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    longest = 1
    for n, (name, (history, steps)) in enumerate(runs.items()):
        colour = colours[n % len(colours)]
        longest = max(longest, len(history.get("loss", [])))
        for ax, key in ((ax_acc, "accuracy"), (ax_loss, "loss")):
            if steps and steps.get(key):
                ax.plot(steps["position"], _shown(key, steps[key]), lw=1, alpha=0.55, color=colour,
                        marker="." if len(steps[key]) == 1 else None)
            elif history.get(key):
                ax.plot(np.arange(1, len(history[key]) + 1), _shown(key, history[key]), lw=1, alpha=0.55,
                        color=colour)
            if history.get(f"val_{key}"):
                values = _shown(key, history[f"val_{key}"])
                ax.plot(np.arange(1, len(values) + 1), values, marker="o", color=colour,
                        ls="-" if len(values) > 1 else "none", label=name if key == "accuracy" else None)
    for ax, label in ((ax_acc, "accuracy"), (ax_loss, "loss")):
        _epoch_axis(ax, longest)
        ax.set_ylabel(_label(label))
        ax.grid(alpha=0.3)
    _accuracy_limits(ax_acc)
    ax_acc.legend(fontsize=8, loc="best")
    fig.suptitle("Learning curves: thin lines training (within epochs), dots validation at each epoch's end",
                 fontsize=10)
    return _save(fig, path)


def first_layer(weights: np.ndarray, path, title: str, limit: int = 64, field: tuple[int, int] = (28, 28)):
    """The first layer's weights as pictures: each convolution filter (kh×kw), or each hidden
    unit of a dense layer on the pixels (``field``: 28×28 for MNIST), on a blue-white-red scale around 0."""
    if weights.ndim == 4:  # Conv2D kernel: kh × kw × channels × filters
        tiles = weights.mean(axis=2).transpose(2, 0, 1)
    else:  # Dense kernel on flat pixels: (height·width) × units
        tiles = weights.T.reshape(-1, *field)
    total = len(tiles)
    tiles = tiles[:limit]
    cols = min(8, len(tiles))
    rows = math.ceil(len(tiles) / cols)
    h, w = tiles.shape[1:]
    # One image of tiles (64 separate axes take seconds to draw), each tile on its own scale
    # so a filter of small weights still shows its pattern; 0 is always white.
    spans = np.abs(tiles).max(axis=(1, 2), keepdims=True)
    scaled = tiles / np.where(spans > 0, spans, 1.0)
    fig, ax = plt.subplots(figsize=(cols * 0.9, rows * 0.9 + 0.6))
    ax.imshow(mosaic(scaled, cols, gap=max(1, h // 6), fill=np.nan), cmap=matplotlib.colormaps["bwr"].with_extremes(bad="white"), vmin=-1, vmax=1,
              interpolation="nearest")
    ax.axis("off")
    shown = f"{len(tiles)} of {total}" if total > len(tiles) else f"{total}"
    ax.set_title(f"{title}: {shown} {'filters' if weights.ndim == 4 else 'units'} "
                 f"({h}×{w}; red positive, blue negative)", fontsize=9)
    return _save(fig, path)


def saliency_grid(items: list[dict], path, title: str):
    """A few digits, each with its saliency map overlaid; ``items`` hold ``digit``, ``map``
    and ``caption``."""
    cols = len(items)
    fig, axes = plt.subplots(2, cols, figsize=(cols * 1.6, 3.8), squeeze=False)
    for col, item in enumerate(items):
        axes[0, col].imshow(item["digit"], cmap="gray_r")
        axes[0, col].set_title(item["caption"], fontsize=8)
        axes[1, col].imshow(item["digit"], cmap="gray_r")
        axes[1, col].imshow(item["map"], cmap="hot", alpha=0.6, vmin=0, vmax=1)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def paired_differences(numbers: list[dict], path, title: str):
    """Each variant's difference to its reference, seed by seed (dots), with the mean (tick)
    and its 95% interval (bar), in accuracy points around a zero line: a paired comparison
    drawn as what it is."""
    shown = [n for n in numbers if n.get("paired_differences")]
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.6 * max(1, len(shown))))
    for y, item in enumerate(shown):
        points = [d * 100 for _, d in item["paired_differences"]]
        ax.scatter(points, [y] * len(points), color="black", s=16, zorder=3)
        if item.get("interval"):
            low, high = (v * 100 for v in item["interval"])
            ax.plot([low, high], [y, y], color="tab:blue", lw=3, alpha=0.35, solid_capstyle="butt")
        ax.plot(item["difference"] * 100, y, marker="|", color="tab:blue", markersize=18, mew=2.5)
    ax.axvline(0, color="tab:red", lw=1, ls="--")
    ax.set_yticks(range(len(shown)), [f"{n['variant']}\nvs {n['reference']}" for n in shown], fontsize=8)
    ax.set_ylim(-0.7, max(1, len(shown)) - 0.3)
    ax.set_xlabel("difference in test accuracy, points (dots: one per seed; |: mean; bar: 95% interval)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)
