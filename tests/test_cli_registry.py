"""`zoo list`, `zoo info`, `zoo plugins` through the real CLI."""

import json

import pytest

SEEDS = {"mlp", "keras1-cnn", "baseline-cnn", "keras-docs-cnn", "deep-bn-cnn", "deep-bn-cnn-fixed"}


@pytest.mark.unit
def test_list_json_has_every_seed_with_counts(cli):
    result = cli("list", "--json")
    assert result.exit_code == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert SEEDS <= set(rows)
    assert rows["deep-bn-cnn"]["params"] == 1_886_250
    assert rows["baseline-cnn"]["macs"] == 1_051_904
    assert rows["baseline-cnn"]["published_accuracy"] == 0.9911


@pytest.mark.unit
def test_list_patterns_and_tags(cli):
    rows = json.loads(cli("list", "*cnn*", "--json").stdout)
    assert "mlp" not in {r["name"] for r in rows} and len(rows) == 5
    rows = json.loads(cli("list", "--tag", "batchnorm", "--json").stdout)
    assert {r["name"] for r in rows} == {"deep-bn-cnn", "deep-bn-cnn-fixed", "best"}


@pytest.mark.unit
def test_list_table(cli):
    result = cli("list")
    assert result.exit_code == 0
    assert "1,886,250" in result.stdout and "baseline-cnn" in result.stdout


def test_info_explains_the_axis(cli):
    result = cli("info", "deep-bn-cnn")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "1,886,250" in text
    assert "axis=1" in text and "52" in text and "28" in text
    data = json.loads(cli("info", "deep-bn-cnn", "--json").stdout)
    assert data["params"] == 1_886_250 and data["non_trainable_params"] == 40
    bn = [layer for layer in data["layers"] if layer["type"] == "BatchNormalization"]
    assert [layer["params"] for layer in bn] == [52, 28]
    assert any("rows" in note for note in data["notes"])


@pytest.mark.unit
def test_info_layer_arithmetic(cli):
    data = json.loads(cli("info", "baseline-cnn", "--json").stdout)
    assert "32 × (5×5×1) + 32 = 832" in [layer["arithmetic"] for layer in data["layers"]]
    assert data["recipes"][0]["optimizer"]["class_name"] == "Adam"


@pytest.mark.unit
def test_info_says_what_predicting_with_test_time_views_costs(cli):
    """speedrun looks at five views of each image when it predicts: the card says so and counts it."""
    text = " ".join(cli("info", "speedrun").stdout.split())
    assert "5 views of each image: 5 × 376,832" in text and "1,884,160" in text
    data = json.loads(cli("info", "speedrun", "--json").stdout)
    assert (data["macs"], data["test_time_views"]) == (376_832, 5)
    assert json.loads(cli("info", "mlp", "--json").stdout)["test_time_views"] == 1
    assert "predicting" not in cli("info", "mlp").stdout


@pytest.mark.unit
def test_unknown_model_is_one_line_exit_2(cli):
    result = cli("info", "mlpp")
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "mlpp" in lines[0] and "mlp" in lines[0]
    assert "Traceback" not in result.stderr
    assert cli("list", "no-such-model").exit_code == 2


@pytest.mark.unit
def test_plugins_json(cli):
    data = json.loads(cli("plugins", "--json").stdout)
    by_name = {p["name"]: p for p in data["plugins"]}
    assert by_name["deep-bn-cnn"]["architectures"] == ["deep-bn-cnn", "deep-bn-cnn-fixed"]
    assert by_name["mlp"]["distribution"] == "mnist-zoo"
    assert "zoo_register_architectures" in by_name["mlp"]["hooks"]
    assert set(by_name["mnist"]["datasets"]) == {"mnist", "fashion-mnist", "digits"}
    assert data["failures"] == []


def test_compare_with_nothing_selected_is_one_line_exit_2(cli):
    result = cli("compare", "--tag", "no-such-tag", "--epochs", "1")
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("Error: no model matches")


def test_help_shows_flags_as_flags_and_the_extras_by_name(cli):
    listed = cli("list", "--help", env={"COLUMNS": "120"})
    json_line = next(line for line in listed.stdout.splitlines() if "--json" in line)
    assert "<bool>" not in json_line  # a flag takes no value
    compared = cli("compare", "--help", env={"COLUMNS": "120"}).stdout
    assert "<bool>" not in compared  # flags, --help too, take no value
    assert "--json-out" in compared and "FILE" in compared and "N|LIST" in compared  # what each option takes
    root = " ".join(cli("--help", env={"COLUMNS": "120"}).stdout.split())
    assert "mnist-zoo[jax]" in root and "mnist-zoo[torch]" in root  # not eaten as rich markup

