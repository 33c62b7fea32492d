"""Seed batching: the seeds of one small model trained together, as one computation.

Why: a small model's training step is mostly overhead on a CPU (starting each step,
each small kernel, the input pipeline), so ten seeds one after another pay it ten
times. Batched, one step trains all of them.

How, without changing a single run:

* each seed's model is built as it would be alone, under its own seed: its own initial
  weights and its own dropout generators;
* the N models become the N branches of one Keras model (N inputs, N outputs). The loss
  is the sum of the N losses, and a branch's weights reach only its own loss, so each
  seed's gradient is exactly its own; the optimizer's state (Adam's moments, RMSprop's
  averages, the weight average) is kept per variable, so each seed's is its own; each
  branch's BatchNorm normalises over its own batch and keeps its own statistics;
* each seed sees the batches it would see alone: the zoo draws the order of the
  training images from the seed (``zoo.input_pipeline.epoch_orders``), batched or not.

Where the order of float operations is the same (it is: the same kernels on the same
shapes), a batched seed ends with the same weights as that seed alone; tests check it to
1e-5. Bit for bit on the AVX-512 EPYC; on the AMX Xeon the kernels round differently (seed 42
of speedrun: 98.91% batched, 98.93% alone), so "the same runs" means the same recipe, seeds
and batches, equal to rounding.
What batching cannot share: a dynamic loss scale (mixed_float16), a global gradient
norm, per-run TensorBoard logs, another Keras backend; those seeds train one after another.
"""

from __future__ import annotations

from dataclasses import dataclass

from zoo import keras_glue
from zoo.evaluation import as_probabilities
from zoo.input_pipeline import dataset_options

# Measured (benchmarks/seed_batching.py, docs/performance.md): batching pays for mlp (5 MFLOP
# a step) and speedrun (0.29 GFLOP); a seed alone at ten times the batch ran only 1.2× faster
# per epoch there, so heavier steps, where the kernels dominate, are left alone (the article
# CNNs, 2.8 GFLOP and up, were not measured batched).
SEED_BATCH_STEP_FLOPS = 1e9
# Tracing grows with the branches; ten seeds at a time keep the first epoch short.
MAX_SEEDS_PER_BATCH = 10
SEED_PREFIX = "seed_"
TURNED_OFF = "turned off (--no-seed-batching)"


def predict(batch, x, output: str, batch_size: int = 1024) -> list:
    """Every branch's class probabilities for ``x``, in one pass over it."""
    import tensorflow as tf

    branches = len(batch.inputs)
    def to_every_branch(images):  # a named function: AutoGraph reads its source (a lambda it warns about)
        return ((images,) * branches,)

    images = tf.data.Dataset.from_tensor_slices(x).batch(batch_size).map(to_every_branch)
    outputs = batch.predict(images.with_options(dataset_options()), verbose=0)
    return [as_probabilities(out, output) for out in outputs]


def branch_name(seed: int) -> str:
    return f"{SEED_PREFIX}{seed}"


def join(models: list, seeds: list[int], input_shape) -> object:
    """One Keras model whose branch k is ``models[k]``, renamed ``seed_<seed>``."""
    import keras

    inputs = []
    for model, seed in zip(models, seeds):
        model.name = branch_name(seed)
        inputs.append(keras.Input(shape=tuple(input_shape), name=f"images_{seed}"))
    return keras.Model(inputs, [m(x) for m, x in zip(models, inputs)], name="seed_batch")


def hand_back_optimizer_state(joint, branch) -> None:
    """Give ``branch``'s own optimizer the state the batch's optimizer kept for its weights
    (moments, averages, the step count), so the saved model is the one a run alone saves.

    Keras's optimizers keep one slot per trained variable in lists aligned with the
    variables (``keras_glue.optimizer_slots``); the batch's lists hold every branch's
    (tests/test_seed_batching.py compares them with a seed alone's, slot by slot)."""
    own = branch.optimizer
    kept = keras_glue.optimizer_slots(joint)
    if own is None or not joint.built or kept is None:
        return
    mine = list(branch.trainable_variables)
    own.build(mine)
    where = {id(v): i for i, v in enumerate(mine)}
    theirs, slot_lists = kept
    for name, slots in slot_lists.items():
        if not hasattr(own, name):
            continue
        for variable, slot in zip(theirs, slots):
            if id(variable) in where and slot is not None:
                getattr(own, name)[where[id(variable)]].assign(slot)
    own.iterations.assign(joint.iterations)


def why_not(options, recipe, backend: str) -> str | None:
    """Why these seeds cannot train batched (None: they can)."""
    if not options.seed_batching:
        return TURNED_OFF
    if not keras_glue.fast_path_enabled("optimizer-slots"):
        return "ZOO_NO_FAST_PATHS turns off optimizer-slots, which hands each seed its optimizer state"
    if backend != "tensorflow":
        return f"not on Keras's {backend} backend (TensorFlow only)"
    if options.precision == "mixed_float16":
        return "mixed_float16's loss scale would be shared by the seeds"
    if options.tensorboard:
        return "TensorBoard logs are written per run"
    if options.test_each_epoch:
        return "the test set is scored after every epoch, per run"
    if "global_clipnorm" in recipe.optimizer:
        return "the recipe clips the global gradient norm, which would mix the seeds"
    return None


def too_costly(macs: int, batch_size: int) -> str | None:
    step = 6 * macs * batch_size
    if step >= SEED_BATCH_STEP_FLOPS:
        return (f"one step costs {step / 1e9:.1f} GFLOP: the kernels dominate, batching does not pay "
                f"(it is used below {SEED_BATCH_STEP_FLOPS / 1e9:.0f} GFLOP)")
    return None


@dataclass(frozen=True)
class Group:
    """Jobs to train together; ``alone``: what one that trains alone records, and why."""

    jobs: tuple
    alone: dict


def trained_alone(reason: str) -> dict:
    """What a run trained on its own records (``execution["seed_batching"]``), and why."""
    return {"batched": False, "reason": reason}


def not_batched(why) -> dict:
    """What a seed that could have batched with others, but did not, records (``why``: the
    ``why_not``/``too_costly`` reason, or a ``NotBatched`` exception)."""
    return trained_alone(f"seed batching: {why}")


def groups(jobs, prepared) -> list[Group]:
    """The jobs in batches of seeds: same model, recipe, knobs, options and data; at most
    ``MAX_SEEDS_PER_BATCH`` each, in the order the jobs were given."""
    keyed: dict[tuple, list] = {}
    for job in jobs:
        data = prepared(job) if callable(prepared) else prepared
        key = (job.model, job.recipe, job.knobs, job.options, job.epochs, job.batch_size, id(data))
        keyed.setdefault(key, []).append(job)
    found = []
    for same in keyed.values():
        if not same[0].options.seed_batching:
            found.extend(Group((job,), not_batched(TURNED_OFF)) for job in same)
            continue
        for start in range(0, len(same), MAX_SEEDS_PER_BATCH):
            found.append(Group(tuple(same[start:start + MAX_SEEDS_PER_BATCH]),
                               trained_alone("no other seed of this model, recipe and data to train with")))
    order = {job: i for i, job in enumerate(jobs)}
    return sorted(found, key=lambda g: order[g.jobs[0]])
