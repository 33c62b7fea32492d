"""A comparison's plan as one value (zoo.plan.Plan): made from zoo.compare's keywords, checked
once, written to plan.json and read back by resume through the same definition."""

import inspect
import json

import pytest

import zoo
from zoo.errors import OptionError, RunFileError
from zoo.plan import PLAN_FILE, Execution, Plan

pytestmark = pytest.mark.unit


def test_a_plan_round_trips_through_plan_json(tmp_path):
    plan = Plan.of(["mlp", "*cnn*"], seeds=3, seed=7, vary={"dropout": [0, 0.5]}, set=["learning_rate=0.01"],
                   epochs=2, limit=1000, validate_on="test", precision="mixed_bfloat16", vary_split=True,
                   executor="local", threads=1, seed_batching=False, margin=0.5)
    assert plan.models == ("mlp", "*cnn*") and plan.seed_list == [7, 8, 9] and plan.seeds == "7,8,9"
    assert plan.vary == ("dropout=0,0.5",) and plan.options.epochs == 2 and plan.margin == 0.005
    plan.write(tmp_path)
    again = Plan.read(tmp_path)
    assert again == plan  # what it computes; how it runs and the margin are not saved
    assert again.execution == Execution() and again.margin == 0.002
    assert json.loads((tmp_path / PLAN_FILE).read_text())["patterns"] == ["mlp", "*cnn*"]


def test_plan_json_holds_every_compare_keyword_that_changes_what_is_computed():
    """One definition: plan.json's keys are Plan.of's, which are zoo.compare's."""
    how = {"executor", "workers", "threads", "scheduler", "seed_batching", "margin", "quick"}
    plan_keys = set(Plan().arguments())
    assert plan_keys == set(inspect.signature(Plan.of).parameters) - how
    compare_keys = set(inspect.signature(zoo.compare).parameters) - {"runs_dir", "progress", "plugins_dir"}
    assert compare_keys - how == plan_keys - {"test_each_epoch", "experiment"}


def test_a_plan_is_checked_when_made():
    for kwargs, message in (({"seeds": 0}, r"^seeds=0: give between 1 and 1000 seeds$"),
                            ({"limit": 5}, r"^limit=5 is too small"),
                            ({"quick": "yes"}, r"^quick is True or False"),
                            ({"margin": 0}, r"^margin is in accuracy points"),
                            ({"executor": "ray"}, r"^executor must be one of"),
                            ({"models": 5}, r"^models takes a model's name")):
        with pytest.raises(OptionError, match=message):
            Plan.of(**kwargs)


def test_resuming_takes_what_was_not_given_from_the_plan(tmp_path):
    saved = Plan.of(["mlp"], seeds=2, epochs=3, limit=500)
    plan, taken = saved.resumed({"epochs": 3, "quick": False}, Execution(seed_batching=False), 0.003)
    assert plan == saved and plan.execution.seed_batching is False and plan.margin == 0.003
    assert taken == {"models": ["mlp"], "seeds": "42,43", "limit": 500}
    assert saved.flags(taken) == "mlp --seeds 42,43 --limit 500"
    with pytest.raises(OptionError, match="resume takes models, .* not colour"):
        saved.resumed({"colour": "red"}, Execution(), 0.002)


def test_a_damaged_plan_is_one_line(tmp_path):
    (tmp_path / PLAN_FILE).write_text(json.dumps({"patterns": ["mlp"], "epochs": 0}))
    with pytest.raises(RunFileError, match=r"plan.json: epochs=0 must be at least 1; give the comparison's"):
        Plan.read(tmp_path)
    (tmp_path / PLAN_FILE).write_text(json.dumps({"patterns": ["mlp"], "limit": "many"}))
    with pytest.raises(RunFileError, match=r"'limit' should be int, not \"many\""):
        Plan.read(tmp_path)
    assert Plan.read(tmp_path / "nowhere") is None
