"""Importing the Keras backend once, quietly, and saying which one runs.

TensorFlow's C++ core writes start-up notices (oneDNN, CPU features) straight to
file descriptor 2 before its logging is configured, so no environment variable
silences them. We point fd 2 at /dev/null for the import alone; Python errors
raised by the import still surface normally afterwards.
"""

from __future__ import annotations

import importlib.util
import os
import sys

_imported = False


def import_backend_quietly() -> None:
    global _imported
    if _imported or "keras" in sys.modules:
        _imported = True
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    saved = None
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except OSError:  # no real fd 2 (some test runners, notebooks): just import
        saved = None
    try:
        import keras  # noqa: F401  (imports the backend, TensorFlow by default)

        # Keras feeds data through tf.data under every backend when TensorFlow is
        # installed: import it now, while its start-up notices go nowhere.
        if keras.backend.backend() == "tensorflow" or importlib.util.find_spec("tensorflow"):
            import tensorflow  # noqa: F401
    except ImportError as exc:
        from zoo.errors import ZooError

        wanted = os.environ.get("KERAS_BACKEND", "tensorflow")
        raise ZooError(f"the Keras backend {wanted!r} cannot be imported ({exc}); install it, e.g. "
                       f"pip install 'mnist-zoo[{wanted}]'") from None
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)
    _imported = True


def describe() -> dict:
    """Backend, versions and device, as recorded in every run."""
    import platform

    import keras

    info = {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    if info["backend"] == "tensorflow":
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
        gpus = tf.config.list_physical_devices("GPU")
        info["device"] = f"GPU: {gpus[0].name}" if gpus else "CPU"
    elif info["backend"] == "jax":
        import jax

        info["jax"] = jax.__version__
        device = jax.devices()[0]
        info["device"] = "CPU" if device.platform == "cpu" else f"{device.platform.upper()}: {device.device_kind}"
    else:
        module = importlib.import_module(info["backend"])
        info[info["backend"]] = getattr(module, "__version__", "?")
        cuda = getattr(module, "cuda", None)
        info["device"] = "GPU: " + cuda.get_device_name(0) if cuda and cuda.is_available() else "CPU"
    return info
