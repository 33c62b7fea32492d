"""Where the zoo meets Keras: losses, execution settings, and every reach into internals.

Seven paths reach into Keras, TensorFlow or Python internals, and only here. Each is tested
to compute the same thing as the plain path (the speed ones were measured,
docs/performance.md), each can be switched off, and ``missing_internals()`` says which
ones the installed Keras no longer has (a unit test fails loudly on any):

``quiet-import``
    TensorFlow's C++ core writes start-up notices (oneDNN, CPU features) straight to
    file descriptor 2 before its logging is configured; fd 2 points at /dev/null for
    the backend's import alone.
``tf-data-autotune-off``
    Keras feeds NumPy arrays through a tf.data pipeline whose autotuning thread
    competes with training on small CPUs and is waited for when each epoch's iterator
    is destroyed (0–5 s when ``fit`` returns). Patched off for ``fit``/``predict``.
``prompt-exit``
    Once TensorFlow is loaded, interpreter teardown takes 1–3 s; the console script
    runs the exit handlers, flushes and ends the process instead.
``seed-generator``
    Keras draws the seeds of unseeded layers from Python's global ``random``; a job gets
    a generator of its own, so another thread (Dask's event loop) cannot change its model.
``layer-names``
    Keras numbers layers from one counter per process; a model is built under fresh
    counters, so its layers are ``conv2d``, ``dense_1`` wherever it is built.
``optimizer-slots``
    Seed batching gives each seed's own optimizer the state the batch's optimizer kept
    for its weights (Keras keeps it in private lists); off, seeds train one at a time.
``build-before-trace``
    On TensorFlow without a distribution strategy, Keras creates the metrics' state
    inside the first traced training step, and TensorFlow traces a step that created
    variables a second time; Keras's own symbolic build (``_symbolic_build``) creates it
    before ``fit``: one trace (about 0.4 s for one speedrun seed, 3.8 s for ten batched).

``ZOO_NO_FAST_PATHS=1`` turns all of them off; ``ZOO_NO_FAST_PATHS=prompt-exit,quiet-import``
turns off the ones named. Every run records in run.json which ones applied.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import importlib.util
import logging
import os
import random
import sys

from zoo import settings
from zoo.errors import ZooError

FAST_PATHS = ("quiet-import", "tf-data-autotune-off", "prompt-exit", "seed-generator", "layer-names",
              "optimizer-slots", "build-before-trace")
NO_FAST_PATHS_ENV = settings.ENVIRONMENT["no_fast_paths"]


def fast_path_enabled(name: str) -> bool:
    """Whether the fast path ``name`` may be used (``ZOO_NO_FAST_PATHS`` says which not)."""
    assert name in FAST_PATHS, name
    value = settings.current().no_fast_paths.lower()
    if value in ("", "0", "false", "no"):
        return True
    if value in ("1", "true", "yes", "all"):
        return False
    return name not in {part.strip() for part in value.split(",")}


# -- importing the backend -------------------------------------------------------
_imported = False


def import_backend_quietly() -> None:
    """Import Keras and its backend once, without TensorFlow's fd-2 start-up notices."""
    global _imported
    if _imported or "keras" in sys.modules:
        if not _imported and "tensorflow" in sys.modules:  # the user imported Keras first (a notebook)
            _quiet_retracing()
        _imported = True
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with _fd2_to_devnull() if fast_path_enabled("quiet-import") else contextlib.nullcontext():
            import keras  # noqa: F401  (imports the backend, TensorFlow by default)

            # Keras feeds data through tf.data under every backend when TensorFlow is
            # installed: import it now, while its start-up notices go nowhere.
            if keras.backend.backend() == "tensorflow" or importlib.util.find_spec("tensorflow"):
                import tensorflow  # noqa: F401

                _quiet_retracing()
    except ImportError as exc:
        wanted = os.environ.get("KERAS_BACKEND", "tensorflow")
        raise ZooError(f"the Keras backend {wanted!r} cannot be imported ({exc}); install it, e.g. "
                       f"pip install 'mnist-zoo[{wanted}]'") from None
    _imported = True


class _QuietTensorFlowImport:
    """The ``quiet-import`` fast path for a notebook's own ``import keras``: TensorFlow's C++ core
    writes its start-up notices (twice, from two libraries) to file descriptor 2 before its
    logging is configured, and a notebook shows them as a red block. This import hook finds
    TensorFlow's spec as Python would and runs its module with fd 2 on /dev/null, once; Python's
    own warnings in a notebook go through ``sys.stderr``, not fd 2, and still show."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once, and never in the way of the real finders
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            loader, run = spec.loader, spec.loader.exec_module

            def exec_module(module):
                with _fd2_to_devnull():
                    run(module)

            loader.exec_module = exec_module
        return spec


@contextlib.contextmanager
def _fd2_to_devnull():
    saved = None
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except OSError:  # no real fd 2: nothing to quiet
        saved = None
    try:
        yield
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)


def quiet_tensorflow_import_in_notebooks() -> None:
    """In a Jupyter kernel, before TensorFlow is imported: the ``quiet-import`` path for the
    user's own ``import keras`` too (``_QuietTensorFlowImport``)."""
    if ("ipykernel" in sys.modules and "tensorflow" not in sys.modules and fast_path_enabled("quiet-import")
            and not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path)):
        sys.meta_path.insert(0, _QuietTensorFlowImport())


class _NoRetracingNotice:
    """Drops TensorFlow's "triggered tf.function retracing" warning, and nothing else: each job
    builds a fresh model, which TensorFlow reports in a warning meant for loops that rebuild by
    mistake. Not news to a learner; their own TensorFlow warnings still show."""

    def filter(self, record) -> bool:
        return "tf.function retracing" not in record.getMessage()


def _quiet_retracing() -> None:
    logger = logging.getLogger("tensorflow")
    if not any(isinstance(f, _NoRetracingNotice) for f in logger.filters):
        logger.addFilter(_NoRetracingNotice())


# -- compiling a model -------------------------------------------------------------
def build_loss(loss: str, from_logits: bool, label_smoothing: float = 0.0):
    """The recipe's loss as a Keras loss object whose options really apply.

    ``keras.losses.get({"class_name": "sparse_categorical_crossentropy", "config": {...}})``
    returns the plain function and silently drops the config, so a logits model would
    train with a probability loss; the classes keep ``from_logits``. Keras's sparse loss
    has no label smoothing: with one, integer labels go through ``SmoothedSparseCrossentropy``.
    """
    import keras

    if label_smoothing and loss == "sparse_categorical_crossentropy":
        return smoothed_sparse_crossentropy()(from_logits=from_logits, label_smoothing=label_smoothing)
    if loss == "categorical_crossentropy":
        return keras.losses.CategoricalCrossentropy(from_logits=from_logits, label_smoothing=label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)


_smoothed_sparse = None


def smoothed_sparse_crossentropy():
    """Keras's categorical cross-entropy with label smoothing, for integer labels: each label
    becomes its one-hot row inside the loss, so the data keep their integer labels. Defining
    it registers it with Keras: a model.keras compiled with it loads only after this ran
    (``zoo.runs.load_model`` calls it first)."""
    global _smoothed_sparse
    if _smoothed_sparse is None:
        import keras

        @keras.saving.register_keras_serializable(package="zoo")
        class SmoothedSparseCrossentropy(keras.losses.CategoricalCrossentropy):
            def call(self, y_true, y_pred):
                classes = keras.ops.shape(y_pred)[-1]
                y_true = keras.ops.one_hot(keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32"), classes)
                return super().call(y_true, y_pred)

        _smoothed_sparse = SmoothedSparseCrossentropy
    return _smoothed_sparse


# A training step cheaper than this many FLOPs is dominated by Python and dispatch
# overhead, so several steps run per compiled call. Measured on 2 cores: the mlp's
# epoch (4.9 MFLOP steps) is 3.4× faster at 64 steps per call, speedrun's training
# (0.29 GFLOP steps) 1.08–1.21× faster; the article CNNs' steps (≥ 1.2 GFLOP) gain
# nothing and lose up to 5%. See docs/performance.md.
CHEAP_STEP_FLOPS = 0.5e9
STEPS_PER_CALL_FOR_CHEAP_STEPS = 64
# Progress and the within-epoch learning curve are read between calls: at least this many
# calls per epoch, so a short run (speedrun, --limit 3000: 22 steps) still draws a curve.
# On full MNIST it changes nothing for mlp (1,688 steps) and little for speedrun (422: 52 a call).
CALLS_PER_EPOCH = 8


def execution_settings(macs: int, batch_size: int, backend: str | None = None,
                       steps_per_epoch: int | None = None) -> dict:
    """How to run the training steps; the same computation either way.

    XLA stays off (Keras's "auto" on CPU): measured, it makes these convolutions
    about 12× slower on CPU. Keras's torch backend runs one step per call only.
    """
    if backend is None:
        import keras

        backend = keras.backend.backend()
    step_flops = 6 * macs * batch_size
    cheap = step_flops < CHEAP_STEP_FLOPS and backend != "torch"
    steps = STEPS_PER_CALL_FOR_CHEAP_STEPS if cheap else 1
    if steps_per_epoch:
        steps = max(1, min(steps, steps_per_epoch // CALLS_PER_EPOCH))
    return {"steps_per_execution": steps}


@contextlib.contextmanager
def seeded(seed: int):
    """``keras.utils.set_random_seed(seed)``, with Keras's default seeds drawn from a
    generator of the job's own (the ``seed-generator`` path). Yields whether it applied.

    Keras gives each layer or initializer made without a seed one drawn from Python's
    global ``random``. Any other thread drawing from it meanwhile (Dask's event loop in a
    worker does) changes the model: measured, one epoch of mlp gave 77.44% instead of
    81.70%. The private generator starts where ``random.seed(seed)`` would, so a run
    alone in its process draws the very same seeds as before.
    """
    import keras

    keras.utils.set_random_seed(seed)
    generators = _keras_seed_generator_module() if fast_path_enabled("seed-generator") else None
    if generators is None:
        yield False
        return
    shared = generators.python_random
    generators.python_random = random.Random(seed)
    try:
        yield True
    finally:
        generators.python_random = shared


def _keras_seed_generator_module():
    try:
        from keras.src.random import seed_generator
    except ImportError:
        return None
    # Keras draws from ``python_random.randint`` (the module ``random``, or our ``random.Random``)
    return seed_generator if callable(getattr(getattr(seed_generator, "python_random", None), "randint", None)) else None


def use_threads(threads: int) -> bool:
    """Set TensorFlow's intra- and inter-op thread pools (it ignores OMP_NUM_THREADS for
    them). Only possible before its first op: False if it already ran with other sizes."""
    try:
        import tensorflow as tf
    except ImportError:
        return False
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        return True
    except RuntimeError:  # the runtime has started: a second job in this process
        return tf.config.threading.get_intra_op_parallelism_threads() == threads


def threads_in_use() -> int | None:
    """TensorFlow's intra-op threads if set (None: its default, one per core). Float sums
    depend on it, so runs agree to the last digit only with the same number."""
    try:
        import tensorflow as tf
    except ImportError:
        return None
    return tf.config.threading.get_intra_op_parallelism_threads() or None


@contextlib.contextmanager
def dtype_policy(precision: str):
    """Layers take their dtype policy when they are made: set it for one build only."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


# -- the input pipeline --------------------------------------------------------------
@contextlib.contextmanager
def input_pipeline_without_autotuning():
    """Feed NumPy arrays to Keras as usual, with tf.data's autotuning thread turned off.

    For arrays, Keras (TensorFlow backend) builds a tf.data pipeline whose parallel map
    and prefetch are autotuned. On 2 cores the autotuner's optimisation thread competes
    with training, and every iterator waits for it when destroyed: Keras makes a fresh
    iterator at each epoch's end, so when `fit` returns it tears one down, measured at
    0 to 5 s after the last epoch (docs/performance.md). The arrays, the batches and their
    order are unchanged (a test compares the trained weights bit for bit); only the
    tuning thread goes. Outside TensorFlow, on a Keras without this adapter, or with the
    fast path switched off, nothing changes. Yields whether autotuning was turned off.
    """
    if not fast_path_enabled("tf-data-autotune-off"):
        yield False
        return
    try:
        import keras

        if keras.backend.backend() != "tensorflow":
            raise ImportError
        import tensorflow as tf
        from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter

        keras_pipeline = ArrayDataAdapter.get_tf_dataset
    except (ImportError, AttributeError):
        yield False
        return

    def pipeline_without_autotuning(adapter):
        options = tf.data.Options()
        options.autotune.enabled = False
        return keras_pipeline(adapter).with_options(options)

    ArrayDataAdapter.get_tf_dataset = pipeline_without_autotuning
    try:
        yield True
    finally:
        ArrayDataAdapter.get_tf_dataset = keras_pipeline


# -- leaving ---------------------------------------------------------------------------
def exit_promptly(code):
    """Exit with ``code``, skipping the interpreter's teardown once TensorFlow is loaded.

    By the time a command returns, everything it writes is saved and closed, yet a
    process that has imported TensorFlow then spends 1–3 s here destroying its modules
    and C++ state (measured, docs/performance.md): a wait at the end of every command
    that does nothing for the learner. Exit handlers still run (temporary files,
    logging, coverage) and both streams are flushed; then the process ends.
    """
    heavy = "tensorflow" in sys.modules or "keras" in sys.modules
    if not heavy or not fast_path_enabled("prompt-exit"):
        raise SystemExit(code)  # nothing heavy loaded (or asked not to): the ordinary exit
    if code is None:
        code = 0
    elif not isinstance(code, int):  # SystemExit("message") prints it and exits 1
        print(code, file=sys.stderr)
        code = 1

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`zoo list | head`) has nothing to flush to
            pass
    os._exit(code)


# -- names --------------------------------------------------------------------------
@contextlib.contextmanager
def fresh_names():
    """Build inside a fresh Keras name scope (the ``layer-names`` path): layers are named as
    if this were the process's first model (``conv2d``, ``dense_1``), whatever was built
    before. Keras numbers layers from one counter per process; without this the same model's
    layers get other names in `zoo info` (after building every model) than in `zoo explain`
    (after building one)."""
    state = _keras_global_state() if fast_path_enabled("layer-names") else None
    if state is None:
        yield False
        return
    saved = state.get_global_attribute("object_name_uids")
    state.set_global_attribute("object_name_uids", collections.defaultdict(int))
    try:
        yield True
    finally:
        state.set_global_attribute("object_name_uids", saved)


def _keras_global_state():
    try:
        from keras.src.backend.common import global_state
    except ImportError:
        return None
    return global_state if hasattr(global_state, "get_global_attribute") else None


# -- seed batching -------------------------------------------------------------------
def optimizer_slots(optimizer) -> tuple[list, dict[str, list]] | None:
    """The variables an optimizer trains and its per-variable state (``optimizer-slots``):
    ``(variables, {slot list name: one slot per variable})``; None where the switch is off or
    this Keras keeps them otherwise. Keras's optimizers keep one slot per trained variable
    in private lists aligned with the variables (Adam's ``_momentums``, ``_velocities``)."""
    return _optimizer_slots(optimizer) if fast_path_enabled("optimizer-slots") else None


def _optimizer_slots(optimizer):
    variables = getattr(optimizer, "_trainable_variables", None)
    if not isinstance(variables, list):
        return None
    slots = {}
    for name, value in vars(optimizer).items():
        if name in ("_trainable_variables", "_variables") or not isinstance(value, (list, tuple)):
            continue
        if len(value) == len(variables) and all(slot is None or hasattr(slot, "assign") for slot in value):
            slots[name] = list(value)
    return list(variables), slots


def build_training_state(model, x, y) -> bool:
    """Create the optimizer's state (public: ``optimizer.build``) and, on the path
    ``build-before-trace``, the compiled metrics' and loss's state from a batch's shapes
    (``x``, ``y``: arrays or tuples of arrays as ``fit`` gets them) before training, so the
    training step is traced once. The same variables, created at zero either way.
    Returns whether the symbolic build ran."""
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    build = getattr(model, "_symbolic_build", None)
    if not fast_path_enabled("build-before-trace") or not callable(build):
        return False
    build(data_batch=(x, y, None))
    return True


def applies(name: str) -> bool:
    """Whether the path ``name`` is switched on and this Keras has what it reaches for
    (what run.json's ``execution.fast_paths`` lists for the paths every run takes)."""
    present = {"seed-generator": _keras_seed_generator_module, "layer-names": _keras_global_state}
    return fast_path_enabled(name) and (name not in present or present[name]() is not None)


def missing_internals() -> list[str]:
    """The internals above that the installed Keras no longer has, by path name: each would
    quietly fall back to the plain path, so a unit test asserts this is empty."""
    import keras

    missing = []
    if keras.backend.backend() == "tensorflow":
        try:
            from keras.src.trainers.data_adapters.array_data_adapter import (
                ArrayDataAdapter,
            )

            if not callable(getattr(ArrayDataAdapter, "get_tf_dataset", None)):
                missing.append("tf-data-autotune-off")
        except ImportError:
            missing.append("tf-data-autotune-off")
    if not callable(getattr(atexit, "_run_exitfuncs", None)):
        missing.append("prompt-exit")
    if _keras_seed_generator_module() is None:
        missing.append("seed-generator")
    state = _keras_global_state()
    if state is None or not isinstance(state.get_global_attribute("object_name_uids"), (dict, type(None))):
        missing.append("layer-names")
    if not callable(getattr(keras.Model, "_symbolic_build", None)):
        missing.append("build-before-trace")
    probe, weight = keras.optimizers.Adam(), keras.Variable([1.0, 2.0])
    probe.build([weight])
    found = _optimizer_slots(probe)
    if found is None or [id(v) for v in found[0]] != [id(weight)] or \
            not {"_momentums", "_velocities"} <= set(found[1]):
        missing.append("optimizer-slots")
    return missing
