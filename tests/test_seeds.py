"""Each seed model builds with the article's exact parameter count and a (None, 10) output."""

import pytest

from zoo.anatomy import architecture_stats

EXPECTED = {
    # name: (params, non-trainable, MACs per image)
    "mlp": (25_450, 0, 25_408),
    "keras1-cnn": (703_210, 0, 7_149_312),
    "baseline-cnn": (592_074, 0, 1_051_904),
    "keras-docs-cnn": (1_199_882, 0, 11_992_448),
    "deep-bn-cnn": (1_886_250, 40, 4_989_504),
    "deep-bn-cnn-fixed": (1_886_618, 224, 4_989_504),
    "speedrun": (43_658, 96, 376_832),
    "best": (273_418, 768, 18_526_464),
}


@pytest.mark.unit
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_seed_builds_with_exact_counts(zoo_registry, name):
    params, non_trainable, macs = EXPECTED[name]
    stats = architecture_stats(zoo_registry.architecture(name))
    assert stats.params == params
    assert stats.non_trainable == non_trainable
    assert stats.macs == macs
    assert stats.output_shape == (None, 10)


@pytest.mark.unit
def test_deep_bn_cnn_normalises_rows_as_published(zoo_registry):
    stats = architecture_stats(zoo_registry.architecture("deep-bn-cnn"))
    bn = [row for row in stats.layers if row.kind == "BatchNormalization"]
    assert [row.params for row in bn] == [52, 28]  # 4 × 13 rows, 4 × 7 rows
    fixed = architecture_stats(zoo_registry.architecture("deep-bn-cnn-fixed"))
    assert [row.params for row in fixed.layers if row.kind == "BatchNormalization"] == [192, 256]


@pytest.mark.unit
def test_layer_arithmetic_is_spelled_out(zoo_registry):
    stats = architecture_stats(zoo_registry.architecture("baseline-cnn"))
    conv = next(row for row in stats.layers if row.kind == "Conv2D")
    assert conv.arithmetic == "32 × (5×5×1) + 32 = 832"
    dense = [row for row in stats.layers if row.kind == "Dense"]
    assert dense[0].arithmetic == "4,608 × 128 + 128 = 589,952"


@pytest.mark.unit
def test_recipes_pass_keras2_defaults_explicitly(zoo_registry):
    """Keras 3's Adadelta defaults to lr 0.001; every Adadelta recipe must say 1.0."""
    adadelta = [r for a in zoo_registry.architectures.values() for r in a.recipes
                if r.optimizer["class_name"] == "Adadelta"]
    assert len(adadelta) >= 3
    for recipe in adadelta:
        assert recipe.optimizer["learning_rate"] == 1.0
        assert recipe.build_optimizer().learning_rate.numpy() == pytest.approx(1.0)


@pytest.mark.unit
def test_recipes_match_articles(zoo_registry):
    docs = zoo_registry.architecture("keras-docs-cnn")
    assert [r.name for r in docs.recipes] == ["adam", "adadelta"]
    assert docs.recipe("adam").loss == "sparse_categorical_crossentropy"
    assert docs.recipe("adam").labels == "integer"
    assert docs.recipe("adadelta").published.test_accuracy == 0.9904
    deep = zoo_registry.architecture("deep-bn-cnn").recipe()
    assert (deep.batch_size, deep.epochs, deep.validation) == (64, 50, "split:0.2")
    base = zoo_registry.architecture("baseline-cnn").recipe()
    assert (base.batch_size, base.epochs) == (200, 10)
    mlp = zoo_registry.architecture("mlp").recipe()
    assert mlp.optimizer == {"class_name": "RMSprop", "learning_rate": 0.001, "rho": 0.9, "epsilon": 1e-8}
