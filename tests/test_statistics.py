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
def test_without_per_image_results_the_interval_combines_a_t_interval_and_the_test_set():
    """Seeds' spread with Student's t on n − 1 df (never a normal quantile at 4 seeds), and the
    test set's binomial standard error, added in quadrature."""
    accs = [0.9910, 0.9921, 0.9905, 0.9917]
    group = statistics.Group("m", "r", (), [record("m", s, a) for s, a in enumerate(accs)])
    summary = statistics.interval(group)
    mean, seed_std = np.mean(accs), np.std(accs, ddof=1)
    test_set_se = np.sqrt(mean * (1 - mean) / 10000)
    half = np.hypot(stats.t.ppf(0.975, 3) * seed_std / 2, 1.96 * test_set_se)
    assert (summary["ci_low"], summary["ci_high"]) == pytest.approx((mean - half, mean + half), rel=1e-4)
    assert summary["seed_std"] == pytest.approx(seed_std) and summary["test_set_se"] == pytest.approx(test_set_se)
    assert summary["n"] == 4 and "binomial" in summary["interval"]
    # never narrower than the seeds' own t-interval (the issue's mlp: 93.7-95.9 from three seeds)
    mlp = [0.9523, 0.9450, 0.9467]
    row = statistics.interval(statistics.Group("mlp", "r", (), [record("mlp", s, a) for s, a in enumerate(mlp)]))
    low, high = stats.t.interval(0.95, 2, loc=np.mean(mlp), scale=stats.sem(mlp))
    assert row["ci_low"] <= low and row["ci_high"] >= high


@pytest.mark.unit
def test_with_per_image_results_the_test_part_comes_from_the_images(tmp_path):
    rng = np.random.default_rng(5)
    y = rng.integers(0, 10, 10000)
    runs = []
    for seed in range(5):
        predicted = np.where(rng.random(10000) < 0.01 + 0.002 * seed, (y + 1) % 10, y)
        runs.append(record("m", seed, float((predicted == y).mean()), tmp_path, predicted, y=y))
    group = statistics.Group("m", "r", (), runs)
    summary = statistics.interval(group)
    assert summary["interval"].startswith("t over seeds") and "test images" in summary["interval"]
    shares = np.stack([statistics._correct(r) for r in runs]).mean(axis=0)
    test_se = np.std(shares, ddof=1) / 100
    half = np.hypot(stats.t.ppf(0.975, 4) * summary["seed_std"] / np.sqrt(5), 1.96 * test_se)
    assert summary["ci_high"] - summary["ci_low"] == pytest.approx(2 * half)
    assert summary["test_set_se"] == pytest.approx(test_se)
    assert summary["ci_low"] < summary["mean"] < summary["ci_high"]


@pytest.mark.unit
@pytest.mark.parametrize("accuracy, seed_sd", [(0.948, 0.0045), (0.990, 0.0005)], ids=["mlp-like", "cnn-like"])
def test_the_interval_covers_at_least_94_percent_at_three_seeds(accuracy, seed_sd):
    """Simulated: a model's accuracy over all digits μ; each test set of 10,000 images draws its
    own mean around μ (binomial), each seed's run scatters around that. Three seeds, 4,000 trials."""
    rng = np.random.default_rng(7)
    trials, n, images, covered = 4000, 3, 10_000, 0
    for _ in range(trials):
        test_mean = rng.binomial(images, accuracy) / images
        accs = np.clip(test_mean + rng.normal(0, seed_sd, n), 0, 1)
        group = statistics.Group("m", "r", (), [record("m", s, float(a)) for s, a in enumerate(accs)])
        summary = statistics.interval(group)
        covered += summary["ci_low"] <= accuracy <= summary["ci_high"]
    assert covered / trials >= 0.94, covered / trials


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
    twice, notes = statistics.analyse(runs + list(runs))  # the same three runs, given twice
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


def test_reproduction_treats_the_published_run_as_one_draw():
    """TOST on the gap with the published run's own noise: s·√(1/n + 1) on n − 1 df."""
    accs = [0.9905, 0.9915, 0.9912]
    row = statistics.analyse([record("m", s, a, published=0.9911) for s, a in zip((1, 2, 3), accs)])[0][0]
    gap, se = np.mean(accs) - 0.9911, np.std(accs, ddof=1) * np.sqrt(1 / 3 + 1)
    p = max(stats.t.sf((gap + 0.002) / se, 2), stats.t.cdf((gap - 0.002) / se, 2))
    half = stats.t.ppf(0.975, 2) * se
    assert row["equivalence_p"] == pytest.approx(p) and row["margin"] == 0.002
    assert row["gap_vs_published"] == pytest.approx(gap)
    assert row["gap_interval"] == pytest.approx([gap - stats.t.ppf(0.95, 2) * se, gap + stats.t.ppf(0.95, 2) * se])
    assert (row["prediction_low"], row["prediction_high"]) == pytest.approx((np.mean(accs) - half, np.mean(accs) + half))
    assert row["verdict"] == ("consistent" if p < 0.05 else "inconclusive")
    assert "validated on the test set" in row["verdict_note"] and "±0.2 pt" in row["verdict_note"]

    high = statistics.analyse([record("m", s, a, published=0.9950) for s, a in zip((1, 2, 3), accs)])[0][0]
    assert high["verdict"] == "above" and "prediction interval" in high["verdict_note"]
    # Inside the prediction interval but not shown equivalent: inconclusive, with what would decide.
    wide = [0.9880, 0.9900, 0.9890]
    unsure = statistics.analyse([record("m", s, a, published=0.9905) for s, a in zip((1, 2, 3), wide)])[0][0]
    assert unsure["verdict"] == "inconclusive"
    assert "80% power" in unsure["verdict_note"] or "no number of seeds would show it" in unsure["verdict_note"]
    assert unsure["seeds_to_decide"] is None or unsure["seeds_to_decide"] > 3
    one = statistics.analyse([record("m", 1, 0.9911, published=0.9911)])[0][0]
    assert one["verdict"] == "inconclusive" and "one run" in one["verdict_note"]  # a run is not a reproduction
    changed = [record("m", 1, 0.85, published=0.9911, overrides={"epochs": {"recipe": 10, "used": 1}}, limit=3000)]
    row = statistics.analyse(changed)[0][0]
    assert row["verdict"] == "not comparable"
    assert row["verdict_note"] == "not comparable: changed epochs, training data (--limit)"


@pytest.mark.unit
def test_the_verdict_never_contradicts_itself():
    """Runs of 99.05, 99.06, 99.05 against a published 99.19: the means are within ±0.2 pt, but the
    published run is outside our prediction interval: never plain "consistent"."""
    accs = [0.9905, 0.9906, 0.9905]
    row = statistics.analyse([record("m", s, a, published=0.9919) for s, a in zip((1, 2, 3), accs)])[0][0]
    assert row["published_inside"] is False and row["equivalence_p"] < 0.05
    assert row["verdict"] == "equivalent, atypical run" and "atypical" in row["verdict_note"]
    # keras-docs-cnn's shipped runs (the audit's numbers): not consistent, the gap's direction said
    docs = [0.9908, 0.9903, 0.9908]
    row = statistics.analyse([record("m", s, a, published=0.9919) for s, a in zip((1, 2, 3), docs)])[0][0]
    assert row["verdict"] != "consistent" and row["equivalence_p"] > 0.05


@pytest.mark.unit
def test_a_copied_run_counts_once_and_ties_are_by_correct_images(tmp_path):
    import dataclasses

    a = dataclasses.replace(record("m", 1, 0.9901), started_at="2026-12-01T10:00:00", finished_at="2026-12-01T10:01:00")
    copy = dataclasses.replace(a, run_dir=str(tmp_path / "elsewhere" / "m-seed1"))
    rows, notes = statistics.analyse([a, copy])
    assert rows[0]["n"] == 1 and any("counted once" in note for note in notes)
    # the same accuracies in another order: equal sums in floats differ in the last bit; a tie it is
    x, y, z = 0.9913, 0.9907, 0.9921
    first = [record("a", s, v) for s, v in zip((1, 2, 3), (x, y, z))]
    second = [record("b", s, v) for s, v in zip((1, 2, 3), (z, x, y))]
    rows, _ = statistics.analyse(first + second)
    assert all(r["standing"] == "best" and r["tied_best"] for r in rows)


@pytest.mark.unit
def test_a_difference_interval_stays_inside_plus_minus_100_points():
    key = statistics.options_key(record("m", 1, 0.5))
    a = statistics.Group("m", "r", key, [record("m", 1, 0.95), record("m", 2, 0.10)], knobs={"lr": 1})
    b = statistics.Group("m", "r", key, [record("m", 1, 0.96), record("m", 2, 0.97)], knobs={"lr": 2})
    test = statistics.test_pair(a, b)
    assert test.name.startswith("paired")
    low, high = statistics.difference_interval(a, b, test)
    assert -1.0 <= low <= high <= 1.0


@pytest.mark.unit
def test_never_about_best_beside_a_gap_larger_than_its_detectable_size():
    """Detectable sizes at Holm's α/m, the level the decision used; a gap above it is never "≈ best"."""
    best = [0.990, 0.991, 0.989]
    runs = [record("best", s, v) for s, v in zip((1, 2, 3), best)]
    runs += [record("x", s, v) for s, v in zip((4, 5, 6), (0.95, 0.99, 0.93))]
    runs += [record("y", s, v) for s, v in zip((7, 8, 9), (0.989, 0.990, 0.988))]
    rows, _ = statistics.analyse(runs)
    for row in rows:
        if row["standing"] == "not distinguishable from the best":
            gap = max(r["mean"] for r in rows) - row["mean"]
            assert gap <= row["min_detectable_difference"]
            assert row["detectable_alpha"] == pytest.approx(0.05 / 3)


@pytest.mark.unit
def test_seeds_option_counts_up_or_takes_a_list():
    from zoo.errors import ZooError
    from zoo.types import parse_seeds

    assert parse_seeds(None, 42) == [42]
    assert parse_seeds("3", 42) == [42, 43, 44]
    assert parse_seeds("1,7,42") == [1, 7, 42]
    for bad in ("x", "0", "1,1", "5000", "1,-3"):
        with pytest.raises(ZooError):
            parse_seeds(bad)
