"""Which Keras backend runs, on what device, with which versions (recorded in every run).

Importing the backend quietly lives in ``zoo.keras_glue``, with the other reaches into Keras.
"""

from __future__ import annotations

import importlib
import os
import platform

from zoo.machine import this_cpu


def describe() -> dict:
    """Backend, versions and device, as recorded in every run."""
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

    info["cpu"] = this_cpu().to_dict()  # the CPU's model, the flags its fp32 peak rests on, the peak
    return info
