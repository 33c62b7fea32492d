"""Is model A really better than model B? Intervals, tests, equivalence and power.

A test accuracy has two sources of noise (Bouthillier et al. 2021; Jordan 2024):

* **the seed**: another initialisation and order of batches moves MNIST accuracy by
  0.03–0.5 point (more for a small model: mlp's seeds spread by 0.45);
* **the test set**: 10,000 images are a sample of all handwritten digits; their binomial
  noise, about ±0.1 point near 99%, does not shrink with seeds.

So the zoo never ranks single numbers:

* runs of one model, recipe and set of options are **grouped** (never pooled across
  different options), and a run given twice — the same model, seed, split, times and accuracy,
  in one folder or a copy of it — is counted once;
* each group gets its mean, the spread across seeds (``seed_std``), the test set's standard
  error (``test_set_se``, from the per-image results where saved) and a 95% **interval with
  both**: Student's t on n − 1 degrees of freedom for the seeds (at 2–5 seeds nothing narrower
  keeps its coverage) and the test set's standard error, in quadrature; with one run, the exact
  binomial interval of its accuracy, and the seed part said to be unknown;
* every pair of groups on one test set gets **the right test**: exact McNemar on per-image
  results for one run each (Dietterich 1998); Welch's t-test across seeds for different
  models (their seeds share nothing: which run is called "seed 42" is arbitrary); a paired
  t-test only for one model whose runs share seeds and split (one option changed). The p-values
  of **all pairs** are corrected together with Holm's method, so a comparison against a
  best chosen from the same data keeps its error rate; a model whose adjusted p ≥ 0.05 is
  "not distinguishable from the best", with the smallest difference its test would detect
  with 80% power at Holm's α/m (``min_detectable_difference``) — and "unsettled" instead when
  its gap is larger than that; ties for best (by correct images) are ties;
* a recipe with a published figure gets a **reproduction verdict**, only for runs of the
  article's whole recipe. The published run is one draw: the gap between it and our mean has
  the standard error s·√(1/n + 1). "consistent" when an equivalence test on that gap (TOST,
  Lakens 2017) shows it within ± ``margin`` and the published run is inside our 95%
  **prediction** interval for one run; "below"/"above" when it is outside; "equivalent,
  atypical run" when both; otherwise "inconclusive", with how many seeds would decide.

Every figure comes from scipy or statsmodels.
"""

from __future__ import annotations

import statistics as pystats
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo.errors import ZooError
from zoo.runs import RunRecord, read_predictions
from zoo.types import label

ALPHA = 0.05
POWER = 0.80
# ± 0.2 point: the default equivalence margin for "consistent with the article" — about twice the
# test set's standard error near 99% (0.1 point), the smallest gap 10,000 test images resolve
# (docs/tutorial.md, "Is A really better than B?", says why)
MARGIN = 0.002
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
    """What makes two records one run: what trained, on which split, when, and what it scored.
    Not the folder: a copied folder holds the same run, which must count once."""
    split = record.split
    return (record.model, record.recipe, tuple(sorted((k, str(v)) for k, v in record.knobs.items())), record.seed,
            split.validate_on, split.train, split.validation, split.test, split.seed, split.limit,
            record.dataset.name, record.dataset.test_sha256, record.started_at, record.finished_at,
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
    return list(seen.values()), [f"{len(copies)} run(s) were given more than once ({shown}; the same model, seed, "
                                 f"split, times and accuracy, in one folder or its copy): each is counted once"]


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
        # the test set's part from the per-image results: how the mean of these runs would move
        # with another test set (each image's share of runs that got it right, its spread over images)
        shares = np.stack(per_image).astype(np.float64).mean(axis=0)
        test_part = float(np.std(shares, ddof=1) / np.sqrt(total))
        method = "t over seeds (n − 1 df) and the test images' standard error, combined"
    else:  # no per-image results: the binomial standard error of the mean accuracy
        test_part = test_set_se or 0.0
        method = "t over seeds (n − 1 df) and the test set's binomial standard error, combined (no per-image results)"
    half = combined_half_width(seed_std, n, test_part)
    summary.update(ci_low=max(0.0, mean - half), ci_high=min(1.0, mean + half), interval=method,
                   test_set_se=test_part or test_set_se)
    return summary


def combined_half_width(seed_std: float, n: int, test_se: float, alpha: float = ALPHA) -> float:
    """The 95% half-width of a mean over ``n`` seeds on one shared test set: the seeds' part with
    Student's t on n − 1 degrees of freedom (at 2–5 seeds a normal or bootstrap quantile is far too
    narrow: a bootstrap over 3 runs covers about 90%), and the test set's part (its standard error,
    known from thousands of images) with the normal quantile, added in quadrature. Never narrower
    than the seeds' own t-interval; covers ≥ 95% in simulation (tests/test_statistics.py)."""
    from scipy import stats

    seeds = stats.t.ppf(1 - alpha / 2, n - 1) * seed_std / np.sqrt(n) if n > 1 and seed_std else 0.0
    test = stats.norm.ppf(1 - alpha / 2) * (test_se or 0.0)
    return float(np.hypot(seeds, test))


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
    min_detectable: float | None = None   # the smallest difference detected with 80% power at this n, at α
    reason: str | None = None
    # the smallest detectable difference at another level: the comparison's Holm α/m
    detect: object = field(default=None, repr=False)

    def detectable_at(self, alpha: float) -> float | None:
        return float(self.detect(alpha)) if self.detect is not None else self.min_detectable


def _test(name: str, p: float, detect) -> Test:
    return Test(name, p, float(detect(ALPHA)), detect=detect)


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
        return _test("McNemar (exact)", mcnemar_p(ca, cb),
                     lambda alpha: (stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(POWER)) * np.sqrt(discordant / images))
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
        return _test("paired t-test (same model, seeds and split)", p,
                     lambda alpha: TTestPower().solve_power(nobs=len(differences), alpha=alpha, power=POWER) * spread)
    sa, sb = np.std(a.accuracies, ddof=1), np.std(b.accuracies, ddof=1)
    if np.ptp(a.accuracies) <= NO_SPREAD and np.ptp(b.accuracies) <= NO_SPREAD:
        return Test(None, reason="no spread across seeds in either: no t-test applies")
    p = float(stats.ttest_ind(a.accuracies, b.accuracies, equal_var=False).pvalue)
    na, nb = len(a.records), len(b.records)
    return _test("Welch t-test", p, lambda alpha: TTestIndPower().solve_power(
        nobs1=na, ratio=nb / na, alpha=alpha, power=POWER) * np.sqrt((sa ** 2 + sb ** 2) / 2))


# -- reproduction ------------------------------------------------------------------------------------
def gap_test(accuracies: list[float], published: float, margin: float) -> dict:
    """Our mean against an article's one published run, which is itself one draw: the gap
    mean − published has the standard error s·√(1/n + 1) (our mean's, and one run's with our
    seed spread), on n − 1 degrees of freedom. TOST within ± ``margin``, the gap's 90% interval
    (the one TOST reads), a one-sided t-test of its direction and the 95% prediction interval
    for one run of ours."""
    from scipy import stats

    n, mean, std = len(accuracies), float(np.mean(accuracies)), float(np.std(accuracies, ddof=1))
    se, df = std * np.sqrt(1 / n + 1), n - 1
    gap = mean - published
    p_equivalent = float(max(stats.t.sf((gap + margin) / se, df), stats.t.cdf((gap - margin) / se, df)))
    t90 = stats.t.ppf(1 - ALPHA, df)
    half = stats.t.ppf(1 - ALPHA / 2, df) * se
    return {"gap": gap, "gap_interval": [gap - t90 * se, gap + t90 * se], "equivalence_p": p_equivalent,
            "direction_p": float(stats.t.sf(abs(gap) / se, df)),
            "prediction_low": mean - half, "prediction_high": mean + half}


def seeds_to_show_equivalence(std: float, gap: float, margin: float, power: float = POWER) -> int | None:
    """The fewest seeds with which TOST at 5% would show the gap inside ± ``margin`` with ``power``
    (80%), if the gap and spread stay as they are; None when no number of seeds would: the
    published run's own noise (one draw) does not shrink with our seeds."""
    from scipy import stats

    room = margin - abs(gap)
    if room <= 0:
        return None
    for n in range(2, 1001):
        se = std * np.sqrt(1 / n + 1)
        if room / se >= stats.t.ppf(1 - ALPHA, n - 1) + stats.t.ppf(power, n - 1):
            return n
    return None


def verdict(group: Group, summary: dict, margin: float = MARGIN) -> dict:
    """Is our model consistent with the article's one published run? The published run is one
    draw with our seed spread (``gap_test``). "consistent with the article" needs TOST within
    ± ``margin`` *and* the published run inside our prediction interval; outside it, the verdict
    says so (below / above, or "equivalent mean, the published run atypical" when TOST holds)."""
    record = group.records[0]
    fields = {"verdict": None, "verdict_note": None, "margin": margin, "equivalence_p": None, "prediction_low": None,
              "prediction_high": None, "published_inside": None, "seeds_to_decide": None, "gap_vs_published": None,
              "gap_interval": None, "direction_p": None}
    if record.published is None:
        return fields
    changed = [name for name, key in (("epochs", "epochs"), ("batch size", "batch_size")) if key in record.overrides]
    if record.split.limit:
        changed.append("training data (--limit)")
    if changed:
        return {**fields, "verdict": "not comparable", "verdict_note": f"not comparable: changed {', '.join(changed)}"}
    published, n = record.published.test_accuracy, summary["n"]
    note = "; the article validated on the test set" if record.split.article_validated_on == "test" else ""
    within = f"±{margin * 100:.2g} pt"
    if n < 2:
        return {**fields, "verdict": "inconclusive",
                "verdict_note": f"inconclusive: one run, the seed spread unknown (--seeds 3 or more){note}"}
    if np.ptp(summary["accuracies"]) <= NO_SPREAD:
        return {**fields, "verdict": "inconclusive",
                "verdict_note": f"inconclusive: the {n} runs have no spread: no interval or test applies{note}"}
    found = gap_test(summary["accuracies"], published, margin)
    low, high = found["prediction_low"], found["prediction_high"]
    inside = bool(low <= published <= high)
    fields.update(equivalence_p=found["equivalence_p"], prediction_low=low, prediction_high=high,
                  published_inside=inside, gap_vs_published=found["gap"], gap_interval=found["gap_interval"],
                  direction_p=found["direction_p"])
    g, (g_low, g_high) = found["gap"] * 100, (v * 100 for v in found["gap_interval"])
    gap = f"gap {g:+.2f} pt [90% {g_low:+.2f}, {g_high:+.2f}]"
    tost = f"TOST within {within}: p {fmt_p(found['equivalence_p'])}"
    equivalent = found["equivalence_p"] < ALPHA
    if equivalent and inside:
        return {**fields, "verdict": "consistent",
                "verdict_note": f"consistent with the article: {gap}; {tost}{note}"}
    if not inside:
        side = "below" if published < low else "above"
        shown = f"{published * 100:.2f}% is {side} our 95% prediction interval for one run ({low * 100:.2f}–{high * 100:.2f}%)"
        if equivalent:
            return {**fields, "verdict": "equivalent, atypical run",
                    "verdict_note": f"equivalent mean, the published run atypical: {shown}; {gap}; {tost}{note}"}
        return {**fields, "verdict": side, "verdict_note": f"{side}: {shown}; {gap}{note}"}
    needed = seeds_to_show_equivalence(float(np.std(summary["accuracies"], ddof=1)), found["gap"], margin)
    direction = ("below" if found["gap"] < 0 else "above")
    lean = (f"; our mean is {direction} it (one-sided t, p {fmt_p(found['direction_p'])})"
            if found["direction_p"] < ALPHA else "")
    decide = (f"about {needed} seeds would show equivalence with 80% power" if needed else
              "no number of seeds would show it: the published run's own noise does not shrink")
    return {**fields, "verdict": "inconclusive", "seeds_to_decide": needed,
            "verdict_note": f"inconclusive: inside our prediction interval ({low * 100:.2f}–{high * 100:.2f}%), "
                            f"not shown within {within} ({gap}; {tost}){lean}; {decide}{note}"}


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
    # ties by correct images, not float ==: the same accuracies summed in another order differ in the last bit
    counted = [round(summary["mean"] * group.test_size, 6) for group, summary in zip(groups, summaries)]
    for members in families.values():
        top = max(counted[i] for i in members)
        leaders = [i for i in members if counted[i] == top]
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
        is_best = counted[i] == counted[best]
        pair = (min(i, best), max(i, best))
        test = results.get(pair) if not is_best else None
        p = adjusted.get(pair) if test else None
        # what this n could detect at the level the decision really used: Holm's first step, α/m
        level = ALPHA / max(family_pairs[i], 1)
        detectable = test.detectable_at(level) if test else None
        gap = summaries[best]["mean"] - summary["mean"]
        if is_best:
            standing = "best"
        elif p is None:
            standing = "untested"
        elif p < ALPHA:
            standing = "worse than the best"
        elif detectable is not None and gap > detectable:
            # larger than this n should detect, yet not rejected: the spread of a few runs is itself
            # uncertain. Never "≈ best" beside such a gap.
            standing = "unsettled"
        else:
            standing = "not distinguishable from the best"
        rows.append({
            "model": group.model, "recipe": group.recipe, "knobs": group.knobs, "label": group.label, **summary,
            "test": test.name if test else None,
            "p_value_vs_best_raw": test.p if test else None, "p_value_vs_best": p,
            "holm": bool(test and test.p is not None and family_pairs[i] > 1),
            "comparisons": family_pairs[i], "standing": standing, "tied_best": i in tied,
            "min_detectable_difference": detectable, "detectable_alpha": level if test else None,
            "detectable_from": _spread_source(group, groups[best]) if test else None,
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
    differences (paired), Welch's (independent seeds), or the discordant images (McNemar);
    never outside −100 to +100 points (two seeds give t on one degree of freedom: wide)."""
    found = _difference_interval(a, b, test)
    return None if found is None else (max(-1.0, found[0]), min(1.0, found[1]))


def _difference_interval(a: Group, b: Group, test: Test) -> tuple[float, float] | None:
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
        found[i] = {"reference": b.label, "test_vs_reference": test.name, "_test": test,
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
        for i in members:  # what this n could detect at the level the decision used (Holm's α/m)
            found[i]["detectable_vs_reference"] = found[i]["_test"].detectable_at(ALPHA / max(len(tested), 1))
    for entry in found.values():
        del entry["_test"]
    return found


def _spread_source(a: Group, b: Group) -> str:
    """Where a detectable size's spread came from: the test images, or a few runs' sd (itself uncertain)."""
    if len(a.records) == 1 and len(b.records) == 1:
        return "the images the two runs disagree on"
    return f"the sd of {len(a.records)} and {len(b.records)} runs (an estimate: it is uncertain at this n)"


def _median(values):
    values = [v for v in values if v is not None]
    return float(pystats.median(values)) if values else None


def fmt_p(p: float | None) -> str:
    if p is None:
        return "—"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"
