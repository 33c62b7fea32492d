"""Is model A really better than model B? Seed statistics, intervals and tests.

One run of a model is one draw: another seed moves MNIST test accuracy by about 0.05–0.07
points, and the 10,000 test images alone carry ±0.1 point of binomial noise. So the zoo
never ranks single numbers:

* runs of one model, recipe and set of options are **grouped** (never pooled across
  different options);
* each group gets its mean, standard deviation, min–max and a 95% **interval**: a
  t-interval across seeds, or, with one run, the exact (Clopper–Pearson) binomial
  interval of its test accuracy;
* each group is **tested against the best** (highest mean): with one run each, exact
  McNemar on the two runs' per-image results (Dietterich 1998); with several seeds, a
  paired t-test when both were run on the same seeds and split, Welch's t-test
  otherwise; Holm's correction when more than two models are compared. A model whose
  p ≥ 0.05 is "not distinguishable from the best".
* a recipe with a published result gets a **reproduction verdict**, but only for runs
  of the article's whole recipe (its epochs, batch size and all the training data).

Every number comes from scipy or statsmodels; nothing here is hand-written statistics.
"""

from __future__ import annotations

import statistics as pystats
from dataclasses import dataclass, field

import numpy as np

from zoo.runs import RunRecord, read_predictions

ALPHA = 0.05


@dataclass
class Group:
    """Runs of one model and recipe under one set of options, across seeds."""

    model: str
    recipe: str
    options: tuple
    records: list[RunRecord] = field(default_factory=list)

    @property
    def accuracies(self) -> list[float]:
        return [r.test_accuracy for r in self.records]

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.records]


def options_key(record: RunRecord) -> tuple:
    """What must agree for runs to be pooled: data, split, training length, numerics."""
    split_seed = None if record.split.varies_with_seed else record.split.seed
    return (record.dataset.name, record.dataset.test_sha256, record.split.validate_on, record.split.limit,
            split_seed, record.split.varies_with_seed, record.hyperparameters.get("epochs"),
            record.hyperparameters.get("batch_size"), record.execution.get("precision", "float32"),
            record.environment.get("backend"))


def job_options_key(job, prepared, backend: str) -> tuple:
    """``options_key`` of the run a job would make on ``prepared`` (its split) with ``backend``:
    how ``zoo compare --resume`` knows a saved run is that job's, before training anything."""
    options = job.options
    return (prepared.arrays.dataset.name, prepared.test_sha256, options.validate_on, options.limit,
            None if options.vary_split else prepared.split.seed, options.vary_split, job.epochs,
            job.batch_size, options.precision, backend)


OPTION_NAMES = ("dataset", "test set", "validate_on", "limit", "split seed", "vary-split", "epochs", "batch size",
                "precision", "backend")


def group_runs(records: list[RunRecord]) -> tuple[list[Group], list[str]]:
    """Completed runs grouped by model, recipe and options; plus notes on what was not pooled."""
    groups: dict[tuple, Group] = {}
    for record in records:
        if record.status != "completed" or record.test_accuracy is None:
            continue
        key = (record.model, record.recipe, options_key(record))
        groups.setdefault(key, Group(record.model, record.recipe, key[2])).records.append(record)
    notes = []
    by_model: dict[tuple, list[Group]] = {}
    for group in groups.values():
        by_model.setdefault((group.model, group.recipe), []).append(group)
    for (model, recipe), split in by_model.items():
        if len(split) > 1:
            differ = [name for i, name in enumerate(OPTION_NAMES) if len({g.options[i] for g in split}) > 1]
            notes.append(f"{model}/{recipe}: {len(split)} groups of runs differ in {', '.join(differ)}, so they "
                         "are not pooled")
    return list(groups.values()), notes


def interval(group: Group) -> dict:
    """Mean, spread and a 95% interval of a group's test accuracy."""
    from scipy import stats

    acc = group.accuracies
    n = len(acc)
    summary = {"n": n, "mean": float(np.mean(acc)), "std": float(np.std(acc, ddof=1)) if n > 1 else None,
               "min": min(acc), "max": max(acc), "accuracies": acc, "seeds": group.seeds}
    if n > 1:
        low, high = stats.t.interval(1 - ALPHA, n - 1, loc=summary["mean"], scale=stats.sem(acc))
        if summary["std"] == 0:
            low = high = summary["mean"]
        # an accuracy lies in [0, 1]: a t-interval from two or three seeds can reach past it
        summary.update(ci_low=max(0.0, float(low)), ci_high=min(1.0, float(high)), interval="t across seeds")
    else:
        record = group.records[0]
        total = record.split.test
        correct = int(round(record.test_accuracy * total))
        ci = stats.binomtest(correct, total).proportion_ci(confidence_level=1 - ALPHA, method="exact")
        summary.update(ci_low=float(ci.low), ci_high=float(ci.high), interval="Clopper-Pearson (one run)")
    return summary


def mcnemar_p(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """Exact McNemar p-value for two classifiers' per-image correctness on one test set."""
    from statsmodels.stats.contingency_tables import mcnemar

    table = [[int(np.sum(correct_a & correct_b)), int(np.sum(correct_a & ~correct_b))],
             [int(np.sum(~correct_a & correct_b)), int(np.sum(~correct_a & ~correct_b))]]
    return float(mcnemar(table, exact=True).pvalue)


def _correct(record: RunRecord):
    """Which test images the run got right, from its saved per-image results (None if unknown)."""
    predictions = read_predictions(record.run_dir) if record.run_dir else None
    if predictions is None:
        return None
    if record.dataset.test_sha256 and predictions["test_sha256"] not in (None, record.dataset.test_sha256):
        return None
    return predictions["correct"]


def test_against(best: Group, other: Group) -> tuple[str | None, float | None]:
    """(test name, p-value) for ``other`` against ``best``; (None, None) when no test applies."""
    from scipy import stats

    same_test_set = best.options[1] == other.options[1] and best.options[1] is not None
    if len(best.records) == 1 and len(other.records) == 1:
        if not same_test_set:
            return None, None
        a, b = _correct(best.records[0]), _correct(other.records[0])
        if a is None or b is None:
            return None, None
        return "McNemar (exact)", mcnemar_p(a, b)
    if len(best.records) < 2 or len(other.records) < 2:
        return None, None
    paired = sorted(best.seeds) == sorted(other.seeds) and best.options[4:6] == other.options[4:6]
    if paired:
        a = [dict(zip(best.seeds, best.accuracies))[s] for s in sorted(best.seeds)]
        b = [dict(zip(other.seeds, other.accuracies))[s] for s in sorted(other.seeds)]
        if np.allclose(np.subtract(a, b), np.subtract(a, b)[0]):  # no spread in the differences
            return "paired t-test", 0.0 if a != b else 1.0
        return "paired t-test", float(stats.ttest_rel(a, b).pvalue)
    if np.std(best.accuracies) == 0 and np.std(other.accuracies) == 0:
        return "Welch t-test", 0.0 if best.accuracies[0] != other.accuracies[0] else 1.0
    return "Welch t-test", float(stats.ttest_ind(best.accuracies, other.accuracies, equal_var=False).pvalue)


def untested_because(best: Group, other: Group) -> str:
    """Why ``test_against`` found no test for ``other`` (shown in the table)."""
    if best.options[1] != other.options[1] or best.options[1] is None:
        return "another test set"
    if (len(best.records) == 1) != (len(other.records) == 1):
        return "one run against several seeds"
    return "no per-image results"


def verdict(group: Group, summary: dict) -> dict:
    """Does the article's published accuracy lie inside our 95% interval?"""
    record = group.records[0]
    if record.published is None:
        return {"verdict": None}
    changed = [name for name, key in (("epochs", "epochs"), ("batch size", "batch_size")) if key in record.overrides]
    if record.split.limit:
        changed.append("training data (--limit)")
    if changed:
        return {"verdict": f"not comparable: changed {', '.join(changed)}"}
    published = record.published.test_accuracy
    note = " (the article validated on the test set)" if record.split.article_validated_on == "test" else ""
    if summary["ci_low"] <= published <= summary["ci_high"]:
        return {"verdict": f"reproduced: {published * 100:.2f}% inside our interval{note}", "published_inside": True}
    side = "below" if published < summary["ci_low"] else "above"
    spread = summary["std"] if summary.get("std") else None
    distance = (f", {abs(published - summary['mean']) / spread:.1f} std from our mean" if spread else "")
    return {"verdict": f"article {side} our interval{distance}{note}", "published_inside": False}


def analyse(records: list[RunRecord]) -> tuple[list[dict], list[str]]:
    """One summary row per group: interval, test against the best, Holm-adjusted p, verdict."""
    groups, notes = group_runs(records)
    if not groups:
        return [], notes
    summaries = [interval(g) for g in groups]
    # Accuracies on different datasets or test sets are not comparable: each test set has
    # its own best, and its own family of tests for Holm's correction.
    families: dict[tuple, list[int]] = {}
    for i, group in enumerate(groups):
        families.setdefault(group.options[:2], []).append(i)
    best_of, family_size, adjusted, tests = {}, {}, {}, {}
    for members in families.values():
        best = max(members, key=lambda i: summaries[i]["mean"])
        for i in members:
            best_of[i], family_size[i] = best, len(members)
            tests[i] = test_against(groups[best], groups[i]) if i != best else ("best", None)
        tested = [i for i in members if tests[i][1] is not None]
        adjusted.update({i: tests[i][1] for i in tested})
        if len(members) > 2 and tested:
            from statsmodels.stats.multitest import multipletests

            corrected = multipletests([tests[i][1] for i in tested], alpha=ALPHA, method="holm")[1]
            adjusted.update(zip(tested, (float(p) for p in corrected)))
    rows = []
    for i, (group, summary) in enumerate(zip(groups, summaries)):
        name, p_raw = tests[i]
        p = adjusted.get(i)
        is_best = i == best_of[i]
        if is_best:
            standing = "best"
        elif p is None:
            standing = "untested"
        else:
            standing = "not distinguishable from the best" if p >= ALPHA else "worse than the best"
        rows.append({
            "model": group.model, "recipe": group.recipe, **summary,
            "test": name if not is_best else None,
            "p_value_vs_best_raw": p_raw, "p_value_vs_best": p,
            "holm": family_size[i] > 2 and p is not None, "standing": standing,
            "untested_because": untested_because(groups[best_of[i]], group) if standing == "untested" else None,
            "median_seconds_per_epoch": _median(r.seconds_per_epoch for r in group.records),
            "median_training_seconds": _median(r.training_seconds for r in group.records),
            **verdict(group, summary),
            "records": group.records,
        })
    return rows, notes


def _median(values):
    values = [v for v in values if v is not None]
    return float(pystats.median(values)) if values else None


def fmt_p(p: float | None) -> str:
    if p is None:
        return "—"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


