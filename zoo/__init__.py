"""mnist-zoo: a teaching model zoo of classic MNIST classifiers.

A plugin author needs only this namespace::

    import zoo

    @zoo.hookimpl
    def zoo_register_architectures(register):
        register(zoo.Architecture(...))

Importing it is cheap: nothing here imports Keras or TensorFlow.
"""

from zoo.errors import ZooError
from zoo.hookspecs import hookimpl
from zoo.registry import Architecture, Dataset, Published, Recipe, Source

__version__ = "0.2.0"
__all__ = ["hookimpl", "Architecture", "Recipe", "Source", "Published", "Dataset", "ZooError", "__version__"]
