"""Is model A really better than model B? Intervals, tests, equivalence and power.

A test accuracy has two sources of noise (Bouthillier et al. 2021; Jordan 2024):

* **the seed**: another initialisation and order of batches moves MNIST accuracy by
  0.03–0.1 point;
* **the test set**: 10,000 images are a sample of all handwritten digits; their binomial
  noise, about ±0.1 point near 99%, is the larger part, and it does not shrink with seeds.

So the zoo never ranks single numbers:

* runs of one model, recipe and set of options are **grouped** (never pooled across
  different options), and a run given twice is counted once;
* each group gets its mean, the spread across seeds (``seed_std``), the test set's standard
  error (``test_set_se``) and a 95% **interval with both**: a bootstrap that resamples the
  seeds and the test images together (per-image results), else both variances added; with
  one run, the exact binomial interval of its accuracy, and the seed part said to be unknown;
* every pair of groups on one test set gets **the right test**: exact McNemar on per-image
  results for one run each (Dietterich 1998); Welch's t-test across seeds for different
  models (their seeds share nothing: which run is called "seed 42" is arbitrary); a paired
  t-test only for one model whose runs share seeds and split (one option changed). The p-values
  of **all pairs** are corrected together with Holm's method, so a comparison against a
  best chosen from the same data keeps its error rate; a model whose adjusted p ≥ 0.05 is
  "not distinguishable from the best", with the smallest difference its test would detect
  with 80% power (``min_detectable_difference``); ties for best are ties;
* a recipe with a published figure gets a **reproduction verdict**, only for runs of the
  article's whole recipe: "reproduced" when an equivalence test (TOST, Lakens 2017) shows our
  mean within ± ``margin`` of it; "below"/"above" when the published run lies outside our 95%
  **prediction** interval for one run; otherwise "inconclusive", with how many seeds would decide.

Every figure comes from scipy or statsmodels (the bootstrap draws with NumPy, seeded).
"""

from __future__ import annotations

import os
import statistics as pystats
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo.errors import ZooError
from zoo.runs import RunRecord, read_predictions

ALPHA = 0.05
POWER = 0.80
MARGIN = 0.002  # ± 0.2 point: the default equivalence margin for "reproduced"
BOOTSTRAP_RESAMPLES = 4000
BOOTSTRAP_SEED = 20260  # fixed, so the same runs always give the same interval
NO_SPREAD = 1e-12  # accuracies this close are the same number (float sums differ in the last bits)


@dataclass
class Group:
    """Runs of one model and recipe under one set of options, across seeds."""

    model: str
    recipe: str
    options: tuple
    records: list[RunRecord] = field(default_factory=list)
    knobs: dict = field(default_factory=dict)  # a variant's settings (zoo.knobs): {} for the model itself

    @property
    def label(self) -> str:
        from zoo.types import label

        return label(self.model, self.knobs)

    @property
    def accuracies(self) -> list[float]:
        return [r.test_accuracy for r in self.records]

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.records]

    @property
    def test_size(self) -> int:
        return self.records[0].split.test


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


def _identity(record: RunRecord) -> tuple:
    """What makes two records one run: the folder it lives in, or (for a copy elsewhere) when
    and what it trained."""
    if record.run_dir:
        return ("dir", os.path.realpath(record.run_dir))
    return ("run", record.model, record.recipe, record.seed, record.started_at, record.finished_at,
            record.test_accuracy)


def distinct(records: list[RunRecord]) -> tuple[list[RunRecord], list[str]]:
    """Each run once: a run directory given twice (or a folder and a run inside it) would
    otherwise be pooled as two seeds with no spread between them."""
    seen: dict[tuple, RunRecord] = {}
    copies: dict[tuple, int] = {}
    for record in records:
        key = _identity(record)
        if key in seen:
            copies[key] = copies.get(key, 1) + 1
            continue
        seen[key] = record
    if not copies:
        return list(seen.values()), []
    named = [f"{Path(seen[key].run_dir).name if seen[key].run_dir else seen[key].model} ×{count}"
             for key, count in copies.items()]
    shown = ", ".join(named[:4]) + (", …" if len(named) > 4 else "")
    return list(seen.values()), [f"{len(copies)} run(s) were given more than once ({shown}): each is counted once"]


def group_runs(records: list[RunRecord]) -> tuple[list[Group], list[str]]:
    """Completed runs grouped by model, recipe and options; plus notes on what was not pooled."""
    records, notes = distinct(records)
    groups: dict[tuple, Group] = {}
    for record in records:
        if record.status != "completed" or record.test_accuracy is None:
            continue
        variant = tuple(record.knobs.items())
        key = (record.model, record.recipe, variant, options_key(record))
        groups.setdefault(key, Group(record.model, record.recipe, key[3], knobs=dict(variant))).records.append(record)
    by_model: dict[tuple, list[Group]] = {}
    for group in groups.values():
        by_model.setdefault((group.label, group.recipe), []).append(group)
    for (model, recipe), split in by_model.items():
        if len(split) > 1:
            differ = [name for i, name in enumerate(OPTION_NAMES) if len({g.options[i] for g in split}) > 1]
            notes.append(f"{model}/{recipe}: {len(split)} groups of runs differ in {', '.join(differ)}, so they "
                         "are not pooled")
    return list(groups.values()), notes


# -- one group: its accuracy, with both sources of noise ---------------------------------------------
def _correct(record: RunRecord):
    """Which test images the run got right, from its saved per-image results (None if unknown)."""
    try:
        predictions = read_predictions(record.run_dir, record.split.test) if record.run_dir else None
    except ZooError:  # damaged or absurd: this run's per-image tests are left out, its accuracy is not
        return None
    if predictions is None:
        return None
    if record.dataset.test_sha256 and predictions["test_sha256"] not in (None, record.dataset.test_sha256):
        return None
    return predictions["correct"]


def hierarchical_bootstrap(correct: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES,
                           seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """Mean accuracies of ``resamples`` bootstrap draws that resample the runs (seeds) and the
    test images together: ``correct`` is runs × images. Each draw picks n runs with replacement
    and N images with replacement (the same images for every run: they share the test set)."""
    rng = np.random.default_rng(seed)
    runs, images = correct.shape
    values = np.empty(resamples)
    correct = np.asarray(correct, dtype=bool).astype(np.float64)
    for start in range(0, resamples, 200):  # in slices, to bound memory: 200 × N at a time
        count = min(200, resamples - start)
        drawn_images = rng.integers(0, images, size=(count, images))
        # How often each draw picked each image, then one matrix product: each run's accuracy per
        # draw, the same numbers (whole counts, exact in float64) as indexing the draws, 4-5x faster.
        offsets = (np.arange(count) * images)[:, None]
        times_drawn = np.bincount((drawn_images + offsets).ravel(), minlength=count * images).reshape(count, images)
        per_run = correct @ times_drawn.T.astype(np.float64) / images  # runs × count
        drawn_runs = rng.integers(0, runs, size=(count, runs))
        values[start:start + count] = per_run[drawn_runs, np.arange(count)[:, None]].mean(axis=1)
    return values


def interval(group: Group) -> dict:
    """Mean, the spread across seeds, the test set's standard error and a 95% interval with both."""
    from scipy import stats

    acc = group.accuracies
    n, total = len(acc), group.test_size
    mean = float(np.mean(acc))
    seed_std = float(np.std(acc, ddof=1)) if n > 1 else None
    test_set_se = float(np.sqrt(mean * (1 - mean) / total)) if total else None
    summary = {"n": n, "mean": mean, "std": seed_std, "seed_std": seed_std, "test_set_se": test_set_se,
               "min": min(acc), "max": max(acc), "accuracies": acc, "seeds": group.seeds}
    if n == 1:
        correct = int(round(acc[0] * total))
        ci = stats.binomtest(correct, total).proportion_ci(confidence_level=1 - ALPHA, method="exact")
        summary.update(ci_low=float(ci.low), ci_high=float(ci.high),
                       interval="Clopper-Pearson: the test set's noise only (one run: the seed part is unknown)")
        return summary
    per_image = [_correct(r) for r in group.records]
    if all(c is not None and len(c) == total for c in per_image):
        draws = hierarchical_bootstrap(np.stack(per_image))
        low, high = np.percentile(draws, [100 * ALPHA / 2, 100 * (1 - ALPHA / 2)])
        method = "bootstrap over seeds and test images"
    else:  # no per-image results: the two variances added, a normal interval
        se = np.sqrt(seed_std ** 2 / n + (test_set_se or 0.0) ** 2)
        low, high = stats.norm.interval(1 - ALPHA, loc=mean, scale=se) if se > 0 else (mean, mean)
        method = "seeds' and test set's variances added (no per-image results)"
    summary.update(ci_low=max(0.0, float(low)), ci_high=min(1.0, float(high)), interval=method)
    return summary


# -- two groups: the right test, and what it could detect ---------------------------------------------
def mcnemar_p(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """Exact McNemar p-value for two classifiers' per-image correctness on one test set."""
    from statsmodels.stats.contingency_tables import mcnemar

    table = [[int(np.sum(correct_a & correct_b)), int(np.sum(correct_a & ~correct_b))],
             [int(np.sum(~correct_a & correct_b)), int(np.sum(~correct_a & ~correct_b))]]
    return float(mcnemar(table, exact=True).pvalue)


def paired_design(a: Group, b: Group) -> bool:
    """Pairing is right only where randomness is really shared: one model (one option changed),
    the same seeds and the same split. Runs of different models share nothing but a number."""
    return (a.model == b.model and sorted(a.seeds) == sorted(b.seeds) and a.options[4:6] == b.options[4:6]
            and len(set(a.seeds)) == len(a.seeds))


@dataclass
class Test:
    name: str | None                      # None: no test applies (``reason`` says why)
    p: float | None = None
    min_detectable: float | None = None   # the smallest difference detected with 80% power at this n
    reason: str | None = None


def test_pair(a: Group, b: Group) -> Test:
    """The test of ``a`` against ``b`` (both on one test set), with its power."""
    from scipy import stats
    from statsmodels.stats.power import TTestIndPower, TTestPower

    if a.options[1] != b.options[1] or a.options[1] is None:
        return Test(None, reason="another test set")
    if len(a.records) == 1 and len(b.records) == 1:
        ca, cb = _correct(a.records[0]), _correct(b.records[0])
        if ca is None or cb is None or len(ca) != len(cb):
            return Test(None, reason="no per-image results")
        images = len(ca)
        discordant = float(np.sum(ca != cb)) / images
        # Normal approximation of the exact test's power: detect δ when |δ| ≥ (z₁₋α/₂ + z_power)·√(d/N).
        detect = (stats.norm.ppf(1 - ALPHA / 2) + stats.norm.ppf(POWER)) * np.sqrt(discordant / images)
        return Test("McNemar (exact)", mcnemar_p(ca, cb), float(detect))
    if len(a.records) < 2 or len(b.records) < 2:
        return Test(None, reason="one run against several seeds")
    if paired_design(a, b):
        by_seed_a, by_seed_b = dict(zip(a.seeds, a.accuracies)), dict(zip(b.seeds, b.accuracies))
        differences = np.array([by_seed_a[s] - by_seed_b[s] for s in sorted(a.seeds)])
        spread = float(np.std(differences, ddof=1))
        if np.ptp(differences) <= NO_SPREAD:
            return Test(None, reason="the paired differences have no spread: no t-test applies")
        p = float(stats.ttest_rel([by_seed_a[s] for s in sorted(a.seeds)],
                                  [by_seed_b[s] for s in sorted(a.seeds)]).pvalue)
        d = TTestPower().solve_power(nobs=len(differences), alpha=ALPHA, power=POWER)
        return Test("paired t-test (same model, seeds and split)", p, float(d * spread))
    sa, sb = np.std(a.accuracies, ddof=1), np.std(b.accuracies, ddof=1)
    if np.ptp(a.accuracies) <= NO_SPREAD and np.ptp(b.accuracies) <= NO_SPREAD:
        return Test(None, reason="no spread across seeds in either: no t-test applies")
    p = float(stats.ttest_ind(a.accuracies, b.accuracies, equal_var=False).pvalue)
    na, nb = len(a.records), len(b.records)
    d = TTestIndPower().solve_power(nobs1=na, ratio=nb / na, alpha=ALPHA, power=POWER)
    return Test("Welch t-test", p, float(d * np.sqrt((sa ** 2 + sb ** 2) / 2)))


# -- reproduction ------------------------------------------------------------------------------------
def seeds_to_show_equivalence(mean: float, std: float, published: float, margin: float) -> int | None:
    """The fewest seeds with which TOST at 5% would show |mean − published| < margin, if the mean
    and spread stay as they are (the 90% interval of the mean must fit inside the margin);
    None when no number would (the mean is at least the margin away)."""
    from scipy import stats

    gap = abs(mean - published)
    if gap >= margin:
        return None
    for n in range(2, 10_001):
        if gap + stats.t.ppf(1 - ALPHA, n - 1) * std / np.sqrt(n) < margin:
            return n
    return None


def verdict(group: Group, summary: dict, margin: float = MARGIN) -> dict:
    """Does our model reproduce the article's one published run? Equivalence within ± ``margin``
    (TOST), or the published run outside our 95% prediction interval for one run."""
    from scipy import stats
    from statsmodels.stats.weightstats import DescrStatsW

    record = group.records[0]
    fields = {"verdict": None, "verdict_note": None, "margin": margin, "equivalence_p": None, "prediction_low": None,
              "prediction_high": None, "published_inside": None, "seeds_to_decide": None}
    if record.published is None:
        return fields
    changed = [name for name, key in (("epochs", "epochs"), ("batch size", "batch_size")) if key in record.overrides]
    if record.split.limit:
        changed.append("training data (--limit)")
    if changed:
        return {**fields, "verdict": "not comparable", "verdict_note": f"not comparable: changed {', '.join(changed)}"}
    published, n, mean, std = record.published.test_accuracy, summary["n"], summary["mean"], summary["std"]
    note = "; the article validated on the test set" if record.split.article_validated_on == "test" else ""
    if n < 2:
        return {**fields, "verdict": "inconclusive",
                "verdict_note": f"inconclusive: one run, the seed spread unknown (--seeds 3 or more){note}"}
    if np.ptp(summary["accuracies"]) <= NO_SPREAD:
        return {**fields, "verdict": "inconclusive",
                "verdict_note": f"inconclusive: the {n} runs have no spread: no interval or test applies{note}"}
    half = stats.t.ppf(1 - ALPHA / 2, n - 1) * std * np.sqrt(1 + 1 / n)
    low, high = mean - half, mean + half
    p_equivalent = float(DescrStatsW(np.asarray(summary["accuracies"])).ttost_mean(published - margin,
                                                                                   published + margin)[0])
    fields.update(equivalence_p=p_equivalent, prediction_low=float(low), prediction_high=float(high),
                  published_inside=bool(low <= published <= high))
    shown = f"{published * 100:.2f}%"
    if p_equivalent < ALPHA:
        return {**fields, "verdict": "reproduced",
                "verdict_note": f"reproduced: within ±{margin * 100:.1f} pt (TOST p {fmt_p(p_equivalent)}){note}"}
    if not fields["published_inside"]:
        side = "below" if published < low else "above"
        return {**fields, "verdict": side,
                "verdict_note": f"{side}: {shown} is {side} our 95% prediction interval for one run "
                                f"({low * 100:.2f}–{high * 100:.2f}%){note}"}
    needed = seeds_to_show_equivalence(mean, std, published, margin)
    decide = (f"about {needed} seeds would show equivalence" if needed else
              f"our mean is {abs(mean - published) * 100:.2f} pt away, beyond the margin")
    return {**fields, "verdict": "inconclusive", "seeds_to_decide": needed,
            "verdict_note": f"inconclusive: inside our prediction interval ({low * 100:.2f}–{high * 100:.2f}%), "
                            f"but within ±{margin * 100:.1f} pt is not shown (TOST p {fmt_p(p_equivalent)}); "
                            f"{decide}{note}"}


# -- the whole comparison ----------------------------------------------------------------------------
def analyse(records: list[RunRecord], margin: float = MARGIN) -> tuple[list[dict], list[str]]:
    """One summary row per group: interval, test against the best (all pairs, Holm), power, verdict."""
    from statsmodels.stats.multitest import multipletests

    groups, notes = group_runs(records)
    if not groups:
        return [], notes
    summaries = [interval(g) for g in groups]
    # Accuracies on different datasets or test sets are not comparable: each test set has
    # its own best, and its own family of tests for Holm's correction.
    families: dict[tuple, list[int]] = {}
    for i, group in enumerate(groups):
        families.setdefault(group.options[:2], []).append(i)
    best_of, tied, results, adjusted, family_pairs = {}, set(), {}, {}, {}
    for members in families.values():
        top = max(summaries[i]["mean"] for i in members)
        leaders = [i for i in members if summaries[i]["mean"] == top]
        if len(leaders) > 1:
            tied.update(leaders)
        pairs = {(a, b): test_pair(groups[a], groups[b]) for k, a in enumerate(members) for b in members[k + 1:]}
        tested = [pair for pair, t in pairs.items() if t.p is not None]
        corrected = (multipletests([pairs[pair].p for pair in tested], alpha=ALPHA, method="holm")[1]
                     if tested else [])
        adjusted.update(zip(tested, (float(p) for p in corrected)))
        for i in members:
            best_of[i], family_pairs[i] = leaders[0], len(tested)
            results.update({(a, b): t for (a, b), t in pairs.items()})
    references = against_references(groups)
    rows = []
    for i, (group, summary) in enumerate(zip(groups, summaries)):
        best = best_of[i]
        is_best = summary["mean"] == summaries[best]["mean"]
        pair = (min(i, best), max(i, best))
        test = results.get(pair) if not is_best else None
        p = adjusted.get(pair) if test else None
        if is_best:
            standing = "best"
        elif p is None:
            standing = "untested"
        else:
            standing = "not distinguishable from the best" if p >= ALPHA else "worse than the best"
        rows.append({
            "model": group.model, "recipe": group.recipe, "knobs": group.knobs, "label": group.label, **summary,
            "test": test.name if test else None,
            "p_value_vs_best_raw": test.p if test else None, "p_value_vs_best": p,
            "holm": bool(test and test.p is not None and family_pairs[i] > 1),
            "comparisons": family_pairs[i], "standing": standing, "tied_best": i in tied,
            "min_detectable_difference": test.min_detectable if test else None,
            "untested_because": test.reason if test and standing == "untested" else None,
            "median_seconds_per_epoch": _median(r.seconds_per_epoch for r in group.records),
            "median_training_seconds": _median(r.training_seconds for r in group.records),
            **verdict(group, summary, margin),
            **references.get(i, {}),
            "records": group.records,
        })
    return rows, notes


# -- variants: each against its reference (the first value of each --vary) ----------------------
def difference_interval(a: Group, b: Group, test: Test) -> tuple[float, float] | None:
    """A 95% interval of mean(a) − mean(b), by the design the test assumed: the per-seed
    differences (paired), Welch's (independent seeds), or the discordant images (McNemar)."""
    from scipy import stats

    if test.name is None:
        return None
    if test.name.startswith("paired"):
        by_b = dict(zip(b.seeds, b.accuracies))
        d = np.array([acc - by_b[seed] for seed, acc in zip(a.seeds, a.accuracies)])
        low, high = stats.t.interval(1 - ALPHA, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
        return float(low), float(high)
    if test.name.startswith("McNemar"):
        ca, cb = _correct(a.records[0]), _correct(b.records[0])
        n = len(ca)
        only_a, only_b = float(np.sum(ca & ~cb)), float(np.sum(~ca & cb))
        diff = (only_a - only_b) / n
        se = np.sqrt(max(only_a + only_b - (only_a - only_b) ** 2 / n, 0.0)) / n
        z = stats.norm.ppf(1 - ALPHA / 2)
        return float(diff - z * se), float(diff + z * se)
    va, vb = np.var(a.accuracies, ddof=1) / len(a.records), np.var(b.accuracies, ddof=1) / len(b.records)
    se = np.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va ** 2 / (len(a.records) - 1) + vb ** 2 / (len(b.records) - 1)) if se > 0 else 1
    diff = float(np.mean(a.accuracies) - np.mean(b.accuracies))
    low, high = stats.t.interval(1 - ALPHA, dof, loc=diff, scale=se) if se > 0 else (diff, diff)
    return float(low), float(high)


def against_references(groups: list[Group]) -> dict[int, dict]:
    """For each variant that is not its model's reference: the difference to the reference,
    its 95% interval, the test (paired where the seeds and split are shared) with Holm's
    correction over the variants compared, and the per-seed differences. The reference of a
    variant is the first group of the same model, test set and knob names (the first value
    of each ``--vary``)."""
    from statsmodels.stats.multitest import multipletests

    reference_of: dict[int, int] = {}
    first: dict[tuple, int] = {}
    for i, group in enumerate(groups):
        if not group.knobs:
            continue
        key = (group.model, group.options[:2], tuple(group.knobs))
        if key in first:
            reference_of[i] = first[key]
        else:
            first[key] = i
    found = {}
    for i, ref in reference_of.items():
        a, b = groups[i], groups[ref]
        test = test_pair(a, b)
        by_b = dict(zip(b.seeds, b.accuracies))
        found[i] = {"reference": b.label, "test_vs_reference": test.name,
                    "difference_vs_reference": float(np.mean(a.accuracies) - np.mean(b.accuracies)),
                    "difference_interval": difference_interval(a, b, test),
                    "p_value_vs_reference_raw": test.p, "p_value_vs_reference": test.p,
                    "detectable_vs_reference": test.min_detectable, "untested_vs_reference": test.reason,
                    "paired_differences": [[seed, acc - by_b[seed]] for seed, acc in zip(a.seeds, a.accuracies)
                                           if seed in by_b]}
    families: dict[tuple, list[int]] = {}
    for i in found:
        families.setdefault((groups[i].model, groups[i].options[:2]), []).append(i)
    for members in families.values():
        tested = [i for i in members if found[i]["p_value_vs_reference_raw"] is not None]
        if len(tested) > 1:
            adjusted = multipletests([found[i]["p_value_vs_reference_raw"] for i in tested], alpha=ALPHA,
                                     method="holm")[1]
            for i, p in zip(tested, adjusted):
                found[i]["p_value_vs_reference"] = float(p)
    return found


def _median(values):
    values = [v for v in values if v is not None]
    return float(pystats.median(values)) if values else None


def fmt_p(p: float | None) -> str:
    if p is None:
        return "—"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"
