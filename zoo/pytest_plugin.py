"""pytest fixtures for plugin authors, installed with mnist-zoo (``pytest11`` entry point).

In a plugin's own tests::

    def test_my_model_meets_the_contract(zoo_check):
        zoo_check("my-model")          # fails the test with one line per broken check;
                                       # a warning (BatchNorm lagging in inference mode) is a pytest warning

The fixture loads the real dataset the way the zoo does (``ZOO_DATA_DIR``, Keras's
cache, or Keras's download), so the overfitting check uses real images.
"""

import warnings

import pytest

from zoo.errors import ZooError
from zoo.keras_glue import import_backend_quietly
from zoo.plugins import get_zoo


class ZooCheckWarning(UserWarning):
    """A contract check passed but found something the plugin's author must read."""


@pytest.fixture
def zoo_check():
    """Run the zoo's plugin contract on a registered architecture; returns the report."""

    def run(name: str, dataset: str = "mnist", data_dir: str | None = None):
        from zoo import data
        from zoo.check import check

        import_backend_quietly()
        zoo = get_zoo()
        try:
            arch = zoo.architecture(name)
            arrays = data.load(zoo.dataset(dataset), data_dir)
        except ZooError as exc:
            pytest.fail(str(exc), pytrace=False)
        report = check(arch, arrays)
        if not report.ok:
            pytest.fail("\n".join(report.failures()), pytrace=False)
        for warning in report.warnings():
            warnings.warn(ZooCheckWarning(warning), stacklevel=2)
        return report

    return run
