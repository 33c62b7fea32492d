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


def shipped_rows(cli, *args):
    result = cli("compare", "--from-runs", SHIPPED, *args, "--json")
    assert result.exit_code == 0, result.stderr
    return {row["model"]: row for row in json.loads(result.stdout)}


def test_the_tutorial_prints_what_the_shipped_runs_give(cli):
    rows = shipped_rows(cli)
    assert len(rows) == 5 and all(row["n"] == 3 and row["seeds"] == [42, 43, 44] for row in rows.values())
    tutorial = (ROOT / "docs" / "tutorial.md").read_text(encoding="utf-8")
    section = tutorial[tutorial.index("### The articles' models, three seeds each"):]
    for model, row in rows.items():
        assert f"│ {model} " in section
        assert f"{row['mean'] * 100:.2f} ± {row['std'] * 100:.2f}%" in section, model


def test_the_shipped_comparison_tests_are_scipys_and_statsmodels(cli):
    rows = shipped_rows(cli)
    best = max(rows.values(), key=lambda row: row["mean"])
    others = [row for row in rows.values() if row is not best]
    raw = [stats.ttest_rel(best["accuracies"], row["accuracies"]).pvalue for row in others]  # same seeds: paired
    holm = multipletests(raw, method="holm")[1] if len(rows) > 2 else raw
    for row, p in zip(others, holm):
        assert row["test"] == "paired t-test" and row["p_value_vs_best"] == pytest.approx(float(p), rel=1e-9), row["model"]
        assert row["standing"] == ("worse than the best" if p < 0.05 else "not distinguishable from the best")


def test_one_seed_of_two_shipped_models_gives_statsmodels_mcnemar(cli):
    first, second = "keras1-cnn-seed42", "keras-docs-cnn-seed42"
    result = cli("compare", "--from-runs", SHIPPED / first, "--from-runs", SHIPPED / second, "--json")
    assert result.exit_code == 0, result.stderr
    tested = next(row for row in json.loads(result.stdout) if row["standing"] != "best")
    a, b = (np.load(SHIPPED / name / "test_predictions.npz")["correct"] for name in (first, second))
    table = [[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]]
    assert tested["test"].startswith("McNemar")
    assert tested["p_value_vs_best"] == pytest.approx(float(mcnemar(table, exact=True).pvalue), rel=1e-9)
