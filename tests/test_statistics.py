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
           split_seed=42, vary=False, validated_on="test", y=None, recipe="r"):
    run_dir = None
    if tmp_path is not None and predicted is not None:
        run_dir = tmp_path / f"{model}-{recipe}-{seed}"
        run_dir.mkdir()
        write_predictions(run_dir, predicted, np.ones(len(predicted)), SHA, predicted == y)
    return RunRecord(model=model, recipe=recipe, status="completed", seed=seed, input_kind="image",
                     dataset=DatasetInfo("mnist", [str(i) for i in range(10)], [28, 28, 1], test_sha256=SHA),
                     split=SplitInfo("val", 54000, 6000, 10000, split_seed if not vary else seed, limit=limit,
                                     article_validated_on=validated_on, varies_with_seed=vary),
                     hyperparameters={"epochs": 10, "batch_size": 128}, overrides=overrides or {},
                     published=PublishedInfo(published) if published else None, test_accuracy=accuracy,
                     run_dir=str(run_dir) if run_dir else None)


@pytest.mark.unit
def test_without_per_image_results_the_interval_adds_both_variances():
    """Seeds' spread and the test set's sampling noise, together (Jordan 2024: the second is larger)."""
    accs = [0.9910, 0.9921, 0.9905, 0.9917]
    group = statistics.Group("m", "r", (), [record("m", s, a) for s, a in enumerate(accs)])
    summary = statistics.interval(group)
    mean, seed_std = np.mean(accs), np.std(accs, ddof=1)
    test_set_se = np.sqrt(mean * (1 - mean) / 10000)
    low, high = stats.norm.interval(0.95, loc=mean, scale=np.sqrt(seed_std ** 2 / 4 + test_set_se ** 2))
    assert (summary["ci_low"], summary["ci_high"]) == pytest.approx((low, high))
    assert summary["seed_std"] == pytest.approx(seed_std) and summary["test_set_se"] == pytest.approx(test_set_se)
    assert summary["n"] == 4 and "variances added" in summary["interval"]


def test_with_per_image_results_a_bootstrap_resamples_seeds_and_images(tmp_path):
    rng = np.random.default_rng(5)
    y = rng.integers(0, 10, 10000)
    runs = []
    for seed in range(5):
        predicted = np.where(rng.random(10000) < 0.01 + 0.002 * seed, (y + 1) % 10, y)
        runs.append(record("m", seed, float((predicted == y).mean()), tmp_path, predicted, y=y))
    group = statistics.Group("m", "r", (), runs)
    summary = statistics.interval(group)
    assert summary["interval"] == "bootstrap over seeds and test images"
    # About what the two variances added give (the bootstrap also sees that the runs share their images).
    se = np.sqrt(summary["seed_std"] ** 2 / 5 + summary["test_set_se"] ** 2)
    assert summary["ci_high"] - summary["ci_low"] == pytest.approx(2 * 1.96 * se, rel=0.35)
    assert summary["ci_low"] < summary["mean"] < summary["ci_high"]
    assert statistics.interval(group)["ci_low"] == summary["ci_low"]  # seeded: the same runs, the same interval


@pytest.mark.unit
def test_the_bootstrap_draws_runs_and_images_as_its_definition_says():
    """Counting each draw's images and one matrix product must give exactly what indexing
    the drawn images gives: the same random draws, whole counts, the same floats."""
    correct = np.random.default_rng(3).random((4, 700)) < 0.97
    resamples, seed = 450, 11  # more than one slice of 200, and a partial one
    rng = np.random.default_rng(seed)
    expected = []
    for start in range(0, resamples, 200):
        count = min(200, resamples - start)
        drawn_images = rng.integers(0, 700, size=(count, 700))
        per_run = correct[:, drawn_images].mean(axis=2)  # runs × count
        drawn_runs = rng.integers(0, 4, size=(count, 4))
        expected.extend(per_run[drawn_runs, np.arange(count)[:, None]].mean(axis=1))
    assert np.array_equal(statistics.hierarchical_bootstrap(correct, resamples, seed), np.array(expected))


@pytest.mark.unit
def test_one_run_gets_the_clopper_pearson_interval():
    group = statistics.Group("m", "r", (), [record("m", 42, 0.9911)])
    summary = statistics.interval(group)
    ci = stats.binomtest(9911, 10000).proportion_ci(confidence_level=0.95, method="exact")
    assert (summary["ci_low"], summary["ci_high"]) == pytest.approx((ci.low, ci.high))
    assert summary["interval"].startswith("Clopper-Pearson") and summary["std"] is None


@pytest.mark.unit
def test_mcnemar_is_statsmodels_exact():
    rng = np.random.default_rng(0)
    a, b = rng.random(10000) < 0.991, rng.random(10000) < 0.989
    table = [[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]]
    assert statistics.mcnemar_p(a, b) == pytest.approx(mcnemar(table, exact=True).pvalue)


@pytest.mark.unit
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


@pytest.mark.unit
def test_different_models_get_welch_one_model_on_shared_seeds_is_paired_and_holm_covers_every_pair():
    best = [0.992, 0.993, 0.991]
    other_recipe = [0.9915, 0.9925, 0.9912]   # the same model, another recipe, the same seeds and split
    far = [0.985, 0.984, 0.986]               # another model, on the same seed numbers: nothing shared
    records = ([record("best", s, a) for s, a in zip((1, 2, 3), best)]
               + [record("best", s, a, recipe="r2") for s, a in zip((1, 2, 3), other_recipe)]
               + [record("far", s, a) for s, a in zip((1, 2, 3), far)])
    rows, _ = statistics.analyse(records)
    by = {(r["model"], r["recipe"]): r for r in rows}
    raw = {"paired": stats.ttest_rel(best, other_recipe).pvalue,
           "best-far": stats.ttest_ind(best, far, equal_var=False).pvalue,
           "r2-far": stats.ttest_ind(other_recipe, far, equal_var=False).pvalue}
    paired, welch = by[("best", "r2")], by[("far", "r")]
    assert paired["test"].startswith("paired t-test") and paired["p_value_vs_best_raw"] == pytest.approx(raw["paired"])
    assert welch["test"] == "Welch t-test" and welch["p_value_vs_best_raw"] == pytest.approx(raw["best-far"])
    holm = multipletests([raw["paired"], raw["best-far"], raw["r2-far"]], method="holm")[1]  # all three pairs
    assert [paired["p_value_vs_best"], welch["p_value_vs_best"]] == pytest.approx(list(holm[:2]))
    assert paired["holm"] and paired["comparisons"] == 3 and welch["standing"] == "worse than the best"


@pytest.mark.unit
def test_power_says_what_this_n_could_detect():
    from statsmodels.stats.power import TTestIndPower

    a, b = [0.992, 0.993, 0.991], [0.9918, 0.9928, 0.9905]
    rows, _ = statistics.analyse([record("a", s, x) for s, x in zip((1, 2, 3), a)]
                                 + [record("b", s, x) for s, x in zip((4, 5, 6), b)])
    other = next(r for r in rows if r["model"] == "b")
    d = TTestIndPower().solve_power(nobs1=3, ratio=1.0, alpha=0.05, power=0.8)
    pooled = np.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2)
    assert other["standing"] == "not distinguishable from the best"
    assert other["min_detectable_difference"] == pytest.approx(d * pooled)
    from zoo.columns import cells

    assert f"would detect ≥ {d * pooled * 100:.2f} pt" in cells(other)["vs_best"]


@pytest.mark.unit
def test_bad_input_is_refused_not_averaged(tmp_path):
    """The same runs twice, zero spread, a tie, one run beside three: no invented evidence."""
    runs = [record("a", s, x) for s, x in zip((1, 2, 3), (0.990, 0.991, 0.992))]
    for i, run in enumerate(runs):
        run.run_dir = str(tmp_path / f"a-{i}")
    once, _ = statistics.analyse(runs)
    twice, notes = statistics.analyse(runs + [record("a", 1, 0.990)] * 0 + list(runs))
    assert [r["n"] for r in twice] == [r["n"] for r in once] == [3] and "given more than once" in notes[0]
    assert twice[0]["ci_low"] == once[0]["ci_low"]

    flat = [record("x", s, 0.99) for s in (1, 2, 3)] + [record("y", s, 0.98) for s in (4, 5, 6)]
    by = {r["model"]: r for r in statistics.analyse(flat)[0]}
    assert by["y"]["standing"] == "untested" and by["y"]["p_value_vs_best"] is None  # never a made-up p of 0
    assert "no spread" in by["y"]["untested_because"]

    tie = [record("p", s, x) for s, x in zip((1, 2), (0.99, 0.98))] + [record("q", s, x) for s, x in
                                                                        zip((3, 4), (0.98, 0.99))]
    rows = statistics.analyse(tie)[0]
    assert [r["standing"] for r in rows] == ["best", "best"] and all(r["tied_best"] for r in rows)

    mixed = [record("three", s, x) for s, x in zip((1, 2, 3), (0.99, 0.991, 0.992))] + [record("one", 7, 0.98)]
    one = next(r for r in statistics.analyse(mixed)[0] if r["model"] == "one")
    assert one["standing"] == "untested" and one["untested_because"] == "one run against several seeds"
    assert "seed part is unknown" in one["interval"]


@pytest.mark.unit
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
    assert by["mlp"]["test"] == "Welch t-test" and by["mlp"]["standing"] == "worse than the best"
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


@pytest.mark.unit
def test_runs_with_different_options_are_not_pooled():
    records = [record("m", 1, 0.99), record("m", 2, 0.98, limit=5000)]
    rows, notes = statistics.analyse(records)
    assert len(rows) == 2 and all(r["n"] == 1 for r in rows)
    assert "differ in limit" in notes[0]


def test_reproduction_needs_equivalence_and_a_prediction_interval():
    from statsmodels.stats.weightstats import DescrStatsW

    accs = [0.9905, 0.9915, 0.9912]
    row = statistics.analyse([record("m", s, a, published=0.9911) for s, a in zip((1, 2, 3), accs)])[0][0]
    p = DescrStatsW(np.array(accs)).ttost_mean(0.9911 - 0.002, 0.9911 + 0.002)[0]
    half = stats.t.ppf(0.975, 2) * np.std(accs, ddof=1) * np.sqrt(1 + 1 / 3)
    assert row["equivalence_p"] == pytest.approx(p) and row["margin"] == 0.002
    assert (row["prediction_low"], row["prediction_high"]) == pytest.approx((np.mean(accs) - half, np.mean(accs) + half))
    assert row["verdict"] == ("reproduced" if p < 0.05 else "inconclusive")
    assert "validated on the test set" in row["verdict_note"]

    high = statistics.analyse([record("m", s, a, published=0.9950) for s, a in zip((1, 2, 3), accs)])[0][0]
    assert high["verdict"] == "above" and "prediction interval" in high["verdict_note"]
    # Inside the prediction interval but not shown equivalent: inconclusive, with what would decide.
    wide = [0.9880, 0.9900, 0.9890]
    unsure = statistics.analyse([record("m", s, a, published=0.9905) for s, a in zip((1, 2, 3), wide)])[0][0]
    assert unsure["verdict"] == "inconclusive" and "seeds would show equivalence" in unsure["verdict_note"]
    assert unsure["seeds_to_decide"] > 3
    one = statistics.analyse([record("m", 1, 0.9911, published=0.9911)])[0][0]
    assert one["verdict"] == "inconclusive" and "one run" in one["verdict_note"]  # a run is not a reproduction
    changed = [record("m", 1, 0.85, published=0.9911, overrides={"epochs": {"recipe": 10, "used": 1}}, limit=3000)]
    row = statistics.analyse(changed)[0][0]
    assert row["verdict"] == "not comparable"
    assert row["verdict_note"] == "not comparable: changed epochs, training data (--limit)"


@pytest.mark.unit
def test_seeds_option_counts_up_or_takes_a_list():
    from zoo.errors import ZooError
    from zoo.jobs import parse_seeds

    assert parse_seeds(None, 42) == [42]
    assert parse_seeds("3", 42) == [42, 43, 44]
    assert parse_seeds("1,7,42") == [1, 7, 42]
    for bad in ("x", "0", "1,1", "5000", "1,-3"):
        with pytest.raises(ZooError):
            parse_seeds(bad)
