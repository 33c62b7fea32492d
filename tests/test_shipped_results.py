"""docs/results/article-three-seeds holds the small files (run.json, per-image results, history)
of the tutorial's three-seed comparison of the article models. `zoo compare --from-runs` on
them must give what the tutorial prints, and its tests must be scipy's and statsmodels' own."""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "docs" / "results" / "article-three-seeds"


_ANSWERS: dict[tuple, str] = {}  # the CLI's answer per command: each test reads its own copy


def shipped_json(cli, *args) -> list[dict]:
    if args not in _ANSWERS:
        result = cli("compare", "--from-runs", SHIPPED, *args, "--json")
        assert result.exit_code == 0, result.stderr
        _ANSWERS[args] = result.stdout
    return json.loads(_ANSWERS[args])


def shipped_rows(cli, *args):
    return {row["model"]: row for row in shipped_json(cli, *args)}


@pytest.mark.unit
def test_the_tutorial_prints_what_the_shipped_runs_give(cli):
    rows = shipped_rows(cli)
    assert len(rows) == 5 and all(row["n"] == 3 and row["seeds"] == [42, 43, 44] for row in rows.values())
    tutorial = (ROOT / "docs" / "tutorial.md").read_text(encoding="utf-8")
    section = tutorial[tutorial.index("### The articles' models, three seeds each"):]
    for model, row in rows.items():
        assert f"│ {model} " in section
        assert f"{row['mean'] * 100:.2f} ± {row['std'] * 100:.2f}%" in section, model


@pytest.mark.unit
def test_the_shipped_comparison_tests_are_scipys_and_statsmodels(cli):
    """Five different models: Welch's t-test for every pair (their seeds share nothing), Holm over all ten."""
    rows = shipped_rows(cli)
    models = list(rows)
    pairs = [(a, b) for i, a in enumerate(models) for b in models[i + 1:]]
    raw = [stats.ttest_ind(rows[a]["accuracies"], rows[b]["accuracies"], equal_var=False).pvalue for a, b in pairs]
    holm = dict(zip(pairs, multipletests(raw, method="holm")[1]))
    best = max(rows.values(), key=lambda row: row["mean"])["model"]
    for model, row in rows.items():
        if model == best:
            continue
        p = holm.get((model, best), holm.get((best, model)))
        assert row["test"] == "Welch t-test" and row["p_value_vs_best"] == pytest.approx(float(p), rel=1e-9), model
        assert row["comparisons"] == 10 and row["standing"] == (
            "worse than the best" if p < 0.05 else "not distinguishable from the best")


def test_every_shipped_row_carries_its_verdict_fields_and_none_claims_a_pairing(cli):
    rows = shipped_rows(cli)
    for row in rows.values():
        for key in ("verdict", "equivalence_p", "prediction_low", "prediction_high", "margin", "seed_std",
                    "test_set_se", "min_detectable_difference"):
            assert key in row, (row["model"], key)
        assert "paired" not in (row["test"] or "")  # different models: nothing is paired
    baseline, docs = rows["baseline-cnn"], rows["keras-docs-cnn"]
    assert baseline["verdict"] == "inconclusive" and baseline["prediction_low"] <= 0.9911
    # the done-when: keras-docs-cnn's published run is one draw with our spread: not "consistent"
    gap, se = docs["mean"] - 0.9919, docs["std"] * np.sqrt(1 / 3 + 1)
    p = max(stats.t.sf((gap + 0.002) / se, 2), stats.t.cdf((gap - 0.002) / se, 2))
    assert docs["equivalence_p"] == pytest.approx(p) and docs["equivalence_p"] > 0.1
    assert docs["verdict"] == "inconclusive" and "±0.2 pt" in docs["verdict_note"]
    # and mlp's interval is at least as wide as its seeds' own t-interval (about 93.7-95.9)
    mlp = rows["mlp"]
    low, high = stats.t.interval(0.95, 2, loc=mlp["mean"], scale=stats.sem(mlp["accuracies"]))
    assert mlp["ci_low"] <= low and mlp["ci_high"] >= high


def test_the_same_runs_given_twice_give_the_same_rows_with_a_note(cli, tmp_path):
    twice = cli("compare", "--from-runs", SHIPPED, "--from-runs", SHIPPED, "--json")
    assert twice.exit_code == 0 and json.loads(twice.stdout) == shipped_json(cli)
    assert "given more than once" in twice.stderr
    # a copied folder holds the same runs: n stays 3, the note says so
    import shutil

    shutil.copytree(SHIPPED, tmp_path / "copy-of-it")
    copied = cli("compare", "--from-runs", SHIPPED, "--from-runs", tmp_path / "copy-of-it", "--json")
    assert copied.exit_code == 0 and "given more than once" in copied.stderr
    assert [r["n"] for r in json.loads(copied.stdout)] == [3] * 5


def test_one_seed_of_two_shipped_models_gives_statsmodels_mcnemar(cli):
    first, second = "keras1-cnn-seed42", "keras-docs-cnn-seed42"
    result = cli("compare", "--from-runs", SHIPPED / first, "--from-runs", SHIPPED / second, "--json")
    assert result.exit_code == 0, result.stderr
    tested = next(row for row in json.loads(result.stdout) if row["standing"] != "best")
    a, b = (np.load(SHIPPED / name / "test_predictions.npz")["correct"] for name in (first, second))
    table = [[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]]
    assert tested["test"].startswith("McNemar")
    assert tested["p_value_vs_best"] == pytest.approx(float(mcnemar(table, exact=True).pvalue), rel=1e-9)


SPEEDRUN = ROOT / "docs" / "results" / "speedrun-five-seeds"


def test_readme_and_docs_state_only_what_the_shipped_runs_support(cli):
    """Every figure README states about the shipped runs is what they give; the overclaims are gone."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    performance = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    result = cli("compare", "--from-runs", SPEEDRUN, "--json")
    assert result.exit_code == 0, result.stderr
    speedrun = json.loads(result.stdout)[0]
    assert speedrun["n"] == 5 and speedrun["seeds"] == [47, 48, 49, 50, 51]
    assert f"{speedrun['mean'] * 100:.2f} ± {speedrun['std'] * 100:.2f}%" in readme
    assert f"{speedrun['ci_low'] * 100:.2f}–{speedrun['ci_high'] * 100:.2f}%" in readme
    reached = sum(a >= 0.99 for a in speedrun["accuracies"])
    assert f"{['no', 'one', 'two', 'three', 'four', 'five'][reached]} of the five" in readme.lower()
    if speedrun["ci_low"] < 0.99:  # 99% is inside the interval: "reaches 99%" is not earned
        assert "reaches 99% test" not in readme and "reaches about 99%" in readme

    rows = shipped_rows(cli)
    table = readme[readme.index("## The article models"):readme.index("`zoo info NAME` explains")]
    for model in ("baseline-cnn", "keras-docs-cnn", "deep-bn-cnn"):
        line = next(line for line in table.splitlines() if line.startswith(f"| `{model}`"))
        assert f"{rows[model]['mean'] * 100:.2f} ± {rows[model]['std'] * 100:.2f}%" in line
        assert rows[model]["verdict"] in line, (model, rows[model]["verdict"])
        assert f"TOST p {rows[model]['equivalence_p']:.3f}" in line
        assert "reproduced" not in line  # a foreign single run is "consistent" at most
    for stale in ("so a difference is claimed only when it is real", "which three seeds show was noise",
                  "99.6% in 8 to 13 minutes", "99.11% inside the interval", "99.19% above the interval"):
        assert stale not in readme, stale
    assert "6.2 TFLOP" not in performance and "6.0 TFLOP per epoch" in performance


BEST = ROOT / "docs" / "results" / "best-fresh-seeds"
WIDTH = ROOT / "docs" / "results" / "best-width-on-validation"


def test_best_is_reported_from_fresh_seeds_with_its_width_chosen_on_validation(cli):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    result = cli("compare", "--from-runs", BEST, "--json")
    assert result.exit_code == 0, result.stderr
    best = json.loads(result.stdout)[0]
    assert best["n"] >= 3 and all(seed >= 47 for seed in best["seeds"])  # seeds that took part in no choice
    row = next(line for line in readme.splitlines() if line.startswith("| `best` |"))
    assert f"{best['mean'] * 100:.2f} ± {best['std'] * 100:.2f}%" in row
    assert f"{best['ci_low'] * 100:.2f}–{best['ci_high'] * 100:.2f}%" in row
    # The width: the validation accuracies README quotes are those of the shipped runs.
    def mean_val(folder, pattern, seeds):
        runs = [json.loads(p.read_text()) for p in sorted(folder.glob(f"{pattern}/run.json"))]
        return np.mean([r["best_val_accuracy"] for r in runs if r["seed"] in seeds])

    narrow_seeds = [json.loads(p.read_text())["seed"] for p in WIDTH.glob("best-narrow-seed*/run.json")]
    wide, narrow = mean_val(BEST, "best-seed*", narrow_seeds), mean_val(WIDTH, "best-narrow-seed*", narrow_seeds)
    assert f"reached {wide * 100:.2f}% best validation accuracy, the 48/96 one {narrow * 100:.2f}%" in readme
    assert wide >= narrow  # the width kept is the one validation prefers


def test_the_report_shows_the_comparisons_own_rows_and_margin(tmp_path):
    """The report renders what the Comparison computed: its margin, its failed jobs; saved runs
    reported with --margin get that margin."""
    import zoo

    loose = zoo.load(SHIPPED, models=["deep-bn-cnn", "keras-docs-cnn"], margin=0.5, progress=False)
    assert all(r["margin"] == 0.005 for r in loose.rows if r.get("verdict"))
    loose.rows.append({"model": "broken-net", "label": "broken-net", "knobs": {}, "recipe": "r", "seed": 42,
                       "status": "failed", "error": "broken-net: build() raised ValueError: no"})
    page = loose.report(tmp_path / "site", progress=False).index.read_text(encoding="utf-8")
    assert "±0.5 pt" in page and "±0.2 pt" not in page
    assert "broken-net" in page
    again = zoo.report(SHIPPED, tmp_path / "again", margin=0.5, progress=False).index.read_text(encoding="utf-8")
    assert "±0.5 pt" in again and "±0.2 pt" not in again
    with pytest.raises(zoo.OptionError, match="margin applies to saved runs"):
        zoo.report(loose, tmp_path / "x", margin=0.3)
