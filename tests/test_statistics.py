"""The comparison's statistics agree with scipy and statsmodels on fixed inputs."""

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from zoo import statistics
from zoo.runs import DatasetInfo, PublishedInfo, RunRecord, SplitInfo, write_predictions

SHA = "test-set-identity"


def record(model, seed, accuracy, tmp_path=None, predicted=None, overrides=None, limit=None, published=None,
           split_seed=42, vary=False, validated_on="test", y=None):
    run_dir = None
    if tmp_path is not None and predicted is not None:
        run_dir = tmp_path / f"{model}-{seed}"
        run_dir.mkdir()
        write_predictions(run_dir, predicted, np.ones(len(predicted)), SHA, predicted == y)
    return RunRecord(model=model, recipe="r", status="completed", seed=seed, input_kind="image",
                     dataset=DatasetInfo("mnist", [str(i) for i in range(10)], [28, 28, 1], test_sha256=SHA),
                     split=SplitInfo("val", 54000, 6000, 10000, split_seed if not vary else seed, limit=limit,
                                     article_validated_on=validated_on, varies_with_seed=vary),
                     hyperparameters={"epochs": 10, "batch_size": 128}, overrides=overrides or {},
                     published=PublishedInfo(published) if published else None, test_accuracy=accuracy,
                     run_dir=str(run_dir) if run_dir else None)


def test_t_interval_across_seeds_is_scipys():
    accs = [0.9910, 0.9921, 0.9905, 0.9917]
    group = statistics.Group("m", "r", (), [record("m", s, a) for s, a in enumerate(accs)])
    summary = statistics.interval(group)
    low, high = stats.t.interval(0.95, 3, loc=np.mean(accs), scale=stats.sem(accs))
    assert (summary["ci_low"], summary["ci_high"]) == pytest.approx((low, high))
    assert summary["std"] == pytest.approx(np.std(accs, ddof=1)) and summary["n"] == 4


def test_one_run_gets_the_clopper_pearson_interval():
    group = statistics.Group("m", "r", (), [record("m", 42, 0.9911)])
    summary = statistics.interval(group)
    ci = stats.binomtest(9911, 10000).proportion_ci(confidence_level=0.95, method="exact")
    assert (summary["ci_low"], summary["ci_high"]) == pytest.approx((ci.low, ci.high))
    assert summary["interval"].startswith("Clopper-Pearson") and summary["std"] is None


def test_mcnemar_is_statsmodels_exact():
    rng = np.random.default_rng(0)
    a, b = rng.random(10000) < 0.991, rng.random(10000) < 0.989
    table = [[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]]
    assert statistics.mcnemar_p(a, b) == pytest.approx(mcnemar(table, exact=True).pvalue)


def test_single_runs_are_tested_by_mcnemar_on_saved_per_image_results(tmp_path):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 10, 10000)
    wrong_a, wrong_b = rng.random(10000) < 0.009, rng.random(10000) < 0.02
    pred_a, pred_b = np.where(wrong_a, (y + 1) % 10, y), np.where(wrong_b, (y + 1) % 10, y)
    rows, _ = statistics.analyse([record("a", 42, (pred_a == y).mean(), tmp_path, pred_a, y=y),
                                  record("b", 42, (pred_b == y).mean(), tmp_path, pred_b, y=y)])
    by = {r["model"]: r for r in rows}
    assert by["a"]["standing"] == "best"
    expected = statistics.mcnemar_p(pred_a == y, pred_b == y)
    assert by["b"]["test"] == "McNemar (exact)" and by["b"]["p_value_vs_best"] == pytest.approx(expected)
    assert by["b"]["standing"] == ("worse than the best" if expected < 0.05 else "not distinguishable from the best")


def test_seeds_paired_when_shared_welch_otherwise_and_holm_over_three():
    best = [0.992, 0.993, 0.991]
    close = [0.9915, 0.9925, 0.9912]
    far = [0.985, 0.984, 0.986]
    records = ([record("best", s, a) for s, a in zip((1, 2, 3), best)]
               + [record("close", s, a) for s, a in zip((1, 2, 3), close)]
               + [record("far", s, a) for s, a in zip((4, 5, 6), far)])
    rows, _ = statistics.analyse(records)
    by = {r["model"]: r for r in rows}
    raw_close = stats.ttest_rel(best, close).pvalue
    raw_far = stats.ttest_ind(best, far, equal_var=False).pvalue
    assert by["close"]["test"] == "paired t-test" and by["close"]["p_value_vs_best_raw"] == pytest.approx(raw_close)
    assert by["far"]["test"] == "Welch t-test" and by["far"]["p_value_vs_best_raw"] == pytest.approx(raw_far)
    holm = multipletests([raw_close, raw_far], method="holm")[1]
    assert [by["close"]["p_value_vs_best"], by["far"]["p_value_vs_best"]] == pytest.approx(list(holm))
    assert by["close"]["holm"] and by["far"]["standing"] == "worse than the best"


def test_each_test_set_has_its_own_best_and_untested_rows_say_why():
    fashion = [record("mlp-fashion", s, a) for s, a in zip((1, 2, 3), (0.84, 0.85, 0.86))]
    for r in fashion:
        r.dataset = DatasetInfo("fashion-mnist", [str(i) for i in range(10)], [28, 28, 1], test_sha256="other")
    records = ([record("cnn", s, a) for s, a in zip((1, 2, 3), (0.991, 0.992, 0.990))]
               + [record("mlp", s, a) for s, a in zip((1, 2, 3), (0.951, 0.948, 0.953))]
               + [record("one-seed", 1, 0.97)] + fashion)
    by = {r["model"]: r for r in statistics.analyse(records)[0]}
    # fashion-mnist's 85% is not "worse" than MNIST's 99%: another test set, another best
    assert by["cnn"]["standing"] == by["mlp-fashion"]["standing"] == "best"
    assert by["mlp"]["test"] == "paired t-test" and by["mlp"]["standing"] == "worse than the best"
    # Holm over MNIST's family only (two tested against cnn), and one run against three seeds has no test
    assert by["one-seed"]["standing"] == "untested"
    assert by["one-seed"]["untested_because"] == "one run against several seeds"
    assert by["mlp"]["p_value_vs_best"] == pytest.approx(by["mlp"]["p_value_vs_best_raw"])  # one test in the family


def test_compare_from_runs_of_two_datasets_keeps_them_apart(cli, tmp_path):
    from zoo.runs import write_record

    mnist_run = record("mlp", 42, 0.95)
    fashion_run = record("mlp", 42, 0.85)
    fashion_run.dataset = DatasetInfo("fashion-mnist", ["T-shirt/top", *map(str, range(1, 10))], [28, 28, 1],
                                      test_sha256="other")
    for run, name in ((mnist_run, "a"), (fashion_run, "b")):
        run.per_class_accuracy = [0.9] * 10
        (tmp_path / name).mkdir()
        write_record(tmp_path / name, run)
    result = cli("compare", "--from-runs", tmp_path, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    assert "these runs differ in dataset (fashion-mnist, mnist)" in result.stderr
    assert "mlp (mnist)" in result.stdout and "mlp (fashion-mnist)" in result.stdout
    assert result.stdout.count("best") >= 2  # each dataset its own best, neither "worse" than the other
    assert "worse" not in result.stdout
    assert result.stdout.count("Test accuracy per") == 2 and "T-shirt/top" in result.stdout  # a table each


def test_runs_with_different_options_are_not_pooled():
    records = [record("m", 1, 0.99), record("m", 2, 0.98, limit=5000)]
    rows, notes = statistics.analyse(records)
    assert len(rows) == 2 and all(r["n"] == 1 for r in rows)
    assert "differ in limit" in notes[0]


def test_reproduction_verdicts_only_for_the_whole_recipe():
    runs = [record("m", s, a, published=0.9911) for s, a in ((1, 0.9905), (2, 0.9915), (3, 0.9912))]
    row = statistics.analyse(runs)[0][0]
    assert row["verdict"].startswith("reproduced: 99.11% inside our interval")
    assert "validated on the test set" in row["verdict"]
    low = [record("m", s, a, published=0.9950) for s, a in ((1, 0.9905), (2, 0.9915), (3, 0.9912))]
    assert "article above our interval" in statistics.analyse(low)[0][0]["verdict"]
    changed = [record("m", 1, 0.85, published=0.9911, overrides={"epochs": {"recipe": 10, "used": 1}}, limit=3000)]
    assert statistics.analyse(changed)[0][0]["verdict"] == "not comparable: changed epochs, training data (--limit)"


def test_seeds_option_counts_up_or_takes_a_list():
    from zoo.errors import ZooError
    from zoo.jobs import parse_seeds

    assert parse_seeds(None, 42) == [42]
    assert parse_seeds("3", 42) == [42, 43, 44]
    assert parse_seeds("1,7,42") == [1, 7, 42]
    for bad in ("x", "0", "1,1", "5000", "1,-3"):
        with pytest.raises(ZooError):
            parse_seeds(bad)
