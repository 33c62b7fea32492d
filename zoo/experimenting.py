"""Experiments: a class's "what does this piece do?", answered with paired seeds.

An experiment (``zoo.Experiment``, registered by plugins through
``zoo_register_experiments``) names a model, the knob values to compare (the first is the
reference) and quick defaults. Running it is a comparison with ``vary``: every variant on
the same seeds and split, so each difference to the reference gets a paired test. This
module turns the rows into the answer a teacher reads out: the difference with its 95%
interval and p-value, or "not distinguishable at this n" with what this n could detect.

``validate-on-test`` experiments measure something else: runs validated on the test set
(as some source articles do) report their best epoch's test accuracy; the epoch fixed in
advance (the recipe's last) is what an honest report would give. Their per-seed
difference is the optimism of choosing on the test set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from zoo.columns import short_test
from zoo.errors import OptionError
from zoo.registry import Experiment
from zoo.runs import read_history
from zoo.statistics import fmt_p

ANSWER_FILE = "experiment.json"   # beside a comparison's runs: the question and its answer
FIGURE_FILE = "differences.png"   # the paired differences, seed by seed


@dataclass
class Answer:
    """An experiment's result in words, plus the numbers behind each sentence."""

    experiment: str
    question: str
    lines: list[str] = field(default_factory=list)
    notice: str = ""
    numbers: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"experiment": self.experiment, "question": self.question, "answer": self.lines,
                "notice": self.notice, "numbers": self.numbers}


def settings(experiment: Experiment, seeds: int | None = None, full: bool = False) -> dict:
    """What ``zoo.compare`` is called with: the experiment's model, variants and quick defaults,
    or with ``full`` the changes it names (usually the article's whole recipe)."""
    chosen = {"seeds": experiment.seeds, "epochs": experiment.epochs, "limit": experiment.limit,
              "set": dict(experiment.set) or None}
    if full:
        chosen.update(experiment.full or {"epochs": None, "limit": None})
        chosen["set"] = dict(chosen["set"] or {}) or None
    if seeds is not None:
        if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
            raise OptionError(": give a whole number of at least 1", parameter="seeds", value=seeds)
        chosen["seeds"] = seeds
    if experiment.kind == "vary" and chosen["seeds"] < 2:
        raise OptionError(": an experiment compares variants seed by seed, give 2 or more", parameter="seeds",
                          value=chosen["seeds"])
    # validate-on-test: validated honestly on the held-out split, the test set scored after every
    # epoch beside it, so the epoch the test set would pick is measured against the one validation picks
    return {"models": experiment.model, "vary": dict(experiment.vary) or None, "validate_on": "val",
            "test_each_epoch": experiment.kind == "validate-on-test", **chosen}


def _pt(value: float) -> str:
    return f"{value * 100:+.2f} pt"


def _p(value: float | None) -> str:
    return fmt_p(value)


def variant_numbers(rows: list[dict]) -> list[dict]:
    """Each variant against its reference, from comparison rows (``statistics.against_references``):
    what the answer's sentences, the report's table and the paired-differences figure show."""
    return [{"variant": row["label"], "reference": row["reference"], "difference": row["difference_vs_reference"],
             "interval": row.get("difference_interval"), "p": row.get("p_value_vs_reference"),
             "test": row.get("test_vs_reference"), "n": row.get("n"),
             "paired_differences": row.get("paired_differences"),
             "detectable": row.get("detectable_vs_reference"), "untested": row.get("untested_vs_reference")}
            for row in rows if row.get("reference") and row.get("difference_vs_reference") is not None]


def answer(experiment: Experiment, comparison) -> Answer:
    """The plain-language answer from a finished experiment's comparison."""
    result = Answer(experiment.name, experiment.question, notice=experiment.notice)
    if experiment.kind == "validate-on-test":
        return _selection_answer(result, comparison)
    for number in variant_numbers(comparison.rows):
        diff, ci, p, n = number["difference"], number["interval"], number["p"], number["n"]
        name, reference, test = number["variant"], number["reference"], short_test(number["test"])
        if p is None:
            sentence = (f"{name} vs {reference}: {_pt(diff)} over {n} seeds; no test applies "
                        f"({number['untested'] or 'too few runs'})")
        elif p < 0.05:
            sentence = (f"{name} vs {reference}: {_pt(diff)}, 95% interval {ci[0] * 100:+.2f} to {ci[1] * 100:+.2f} "
                        f"pt, {test} p {_p(p)} over {n} seeds: {'better' if diff > 0 else 'worse'} than the reference")
        elif number["detectable"] is not None and abs(diff) > number["detectable"]:
            sentence = (f"{name} vs {reference}: {_pt(diff)}, 95% interval {ci[0] * 100:+.2f} to "
                        f"{ci[1] * 100:+.2f} pt, {test} p {_p(p)}: unsettled — the gap is larger than {n} seeds "
                        f"should detect (≥ {number['detectable'] * 100:.2f} pt), yet the test does not reject; "
                        f"the spread of {n} runs is itself uncertain: more seeds")
        else:
            detect = number["detectable"]
            could = f": this n would detect ≥ {detect * 100:.2f} pt" if detect is not None else ""
            sentence = (f"{name} vs {reference}: {_pt(diff)}, 95% interval {ci[0] * 100:+.2f} to "
                        f"{ci[1] * 100:+.2f} pt, {test} p {_p(p)}: not distinguishable at this n ({n} seeds){could}")
        result.lines.append(sentence)
        result.numbers.append(number)
    if not result.lines:
        result.lines.append("no variant finished next to its reference: nothing to compare")
    return result


def selection_optimism(records) -> dict | None:
    """Per seed, what choosing the epoch on the test set reports (its best epoch's test accuracy)
    minus what choosing it on the held-out validation split gives (the test accuracy at the best
    validation epoch), from runs that scored the test set after every epoch (``test_each_epoch``)."""
    from scipy import stats

    rows = []
    for record in records:
        history = read_history(record.run_dir) if record.run_dir else None
        test, val = (history or {}).get("test_accuracy") or [], (history or {}).get("val_accuracy") or []
        if record.split.validate_on == "val" and len(test) >= 2 and len(val) == len(test):
            chosen = int(np.argmax(val))
            rows.append((record.seed, max(test), test[chosen], chosen + 1, int(np.argmax(test)) + 1))
    if not rows:
        return None
    d = np.array([best - chosen for _, best, chosen, _, _ in rows])
    out = {"n": len(d), "mean": float(d.mean()), "per_seed": [[s, b - c] for s, b, c, _, _ in rows],
           "best_mean": float(np.mean([b for _, b, _, _, _ in rows])),
           "chosen_mean": float(np.mean([c for _, _, c, _, _ in rows])),
           "epochs": [[s, by_val, by_test] for s, _, _, by_val, by_test in rows]}
    if len(d) > 1 and np.ptp(d) > 0:
        low, high = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
        out["interval"] = [float(low), float(high)]  # unclipped: the t-interval may reach below 0
    return out


def _selection_answer(result: Answer, comparison) -> Answer:
    found = selection_optimism(comparison.records)
    if found is None:
        result.lines.append("no run scored the test set after two epochs or more: nothing to measure")
        return result
    text = (f"choosing the epoch by test accuracy reports {found['best_mean'] * 100:.2f}% where the epoch chosen on "
            f"the held-out validation split scores {found['chosen_mean'] * 100:.2f}% on the test set: "
            f"{_pt(found['mean'])} of optimism, mean of {found['n']} seeds")
    if "interval" in found:
        text += f", 95% interval {found['interval'][0] * 100:+.2f} to {found['interval'][1] * 100:+.2f} pt"
    else:
        text += " (one seed, or no spread: no interval)"
    result.lines.append(text)
    result.numbers.append({"variant": "best epoch by test accuracy", "reference": "epoch chosen on validation",
                           "difference": found["mean"], "interval": found.get("interval"), "p": None,
                           "test": "t-interval of the per-seed optimism", "n": found["n"],
                           "paired_differences": found["per_seed"], "epochs": found["epochs"]})
    return result
