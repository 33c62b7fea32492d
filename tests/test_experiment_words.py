"""Each built-in experiment's quick run answers its own question: its words agree with its numbers.

An experiment is text a teacher reads out (its question, its "what to notice") beside numbers
the zoo measures. These tests run every built-in experiment as `zoo experiment NAME` runs it
(the quick defaults) and check the sentences against the rows: the direction of each
difference, "better/worse" only with p < 0.05, the steps the question speaks of, and no
warning that recommends the value a row already uses.
"""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.experiments


def _steps(row) -> int:
    return (row.get("budget") or {}).get("steps")


def check_words(comparison) -> None:
    """What every experiment's answer must satisfy: each sentence says what its numbers say."""
    answer = comparison.answer
    assert answer.lines and answer.numbers
    for line, number in zip(answer.lines, answer.numbers):
        p, diff = number["p"], number["difference"]
        if p is None:
            continue
        if p < 0.05:
            assert ("better" in line) == (diff > 0) and ("worse" in line) == (diff < 0), line
        else:
            assert "not distinguishable" in line and "better" not in line and "worse" not in line, line
    for row in comparison.rows:
        momentum = (row.get("knobs") or {}).get("bn_momentum")
        for warning in row.get("warnings") or []:  # a warning never recommends what the row uses
            for value in re.findall(r"use momentum=([0-9.]+)", warning):
                assert momentum is None or float(value) != float(momentum), warning


def run(name, mnist_npz, tmp_path):
    import zoo

    return zoo.experiment(name, data_dir=mnist_npz, runs_dir=tmp_path, progress=False)


def test_batchnorm_short_run_runs_a_few_hundred_steps_and_says_why(mnist_npz, tmp_path):
    result = run("batchnorm-short-run", mnist_npz, tmp_path)
    check_words(result)
    reference, settled = (result.row(f"deep-bn-cnn-fixed[bn_momentum={m}]") for m in ("0.99", "0.9"))
    steps = _steps(reference)
    assert 100 <= steps < 1000  # "a few hundred steps", as the question says
    assert f"{steps} steps" in result.answer.notice and f"0.99^{steps}" in result.answer.notice
    assert f"{0.99 ** steps:.0%}" in result.answer.notice  # the share of the start it says remains
    # the notice's claim: at 0.99 the test accuracy sits far below training; at 0.9 the start is gone
    assert any(w.startswith("inference far below training") for w in reference["warnings"])
    assert not any("BatchNorm moving statistics" in w for w in settled["warnings"])
    [number] = result.answer.numbers
    assert number["difference"] > 0.2 and number["p"] < 0.05
    assert "better than the reference" in result.answer.lines[0]


def test_adadelta_quick_run_is_flagged_short_and_says_so(mnist_npz, tmp_path):
    result = run("adadelta-learning-rate", mnist_npz, tmp_path)
    check_words(result)
    [number] = result.answer.numbers
    assert number["difference"] < -0.3 and number["p"] < 0.05 and "worse" in result.answer.lines[0]
    assert all(any(w.startswith("under-trained") for w in row["warnings"]) for row in result.rows)
    assert "under-trained" in result.answer.notice  # the words say the run is short on purpose


@pytest.mark.parametrize("name", ["batchnorm-axis", "dropout"])
def test_the_other_variant_experiments_say_what_their_numbers_say(name, mnist_npz, tmp_path):
    result = run(name, mnist_npz, tmp_path)
    check_words(result)
    if all(any(w.startswith("under-trained") for w in row["warnings"]) for row in result.rows):
        assert "under-trained" in result.answer.notice


def test_validate_on_test_reports_optimism_that_is_never_negative(mnist_npz, tmp_path):
    result = run("validate-on-test", mnist_npz, tmp_path)
    [number] = result.answer.numbers
    assert number["difference"] >= 0 and number["n"] == 5
    assert f"{number['difference'] * 100:+.2f} pt of optimism" in result.answer.lines[0]
