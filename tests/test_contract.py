"""Every registered model meets the plugin contract, as timm tests every model it lists."""

import pytest

from zoo.plugins import get_zoo

# Checked in the default run unless a model's contract check takes long on 2 cores.
SLOW = {"best"}


def _params():
    return [pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name
            for name in get_zoo().architectures]


@pytest.mark.parametrize("name", _params())
def test_registered_model_passes_zoo_check(name, zoo_registry, mnist):
    from zoo.check import check

    report = check(zoo_registry.architecture(name), mnist)
    assert report.ok, "\n".join(report.failures())
    assert [r.name for r in report.results][:3] == ["metadata", "build", "output shape"]
