"""mnist-zoo: a teaching model zoo of classic MNIST classifiers.

Importing this package is cheap: nothing here imports Keras or TensorFlow.
"""

from zoo.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]
