"""The input pipeline: the batches every run trains on, alone or in a seed batch.

A run sees the training images in an order the zoo draws from its seed (``epoch_orders``),
not Keras's shuffle, so that a seed trained alone and the same seed trained in a batch
with others (``zoo.seed_batches``) see the very same batches. The pipeline is built as
Keras builds its own for arrays: batches gathered by index, in parallel, in order.
"""

from __future__ import annotations

import numpy as np


def epoch_orders(seed: int, images: int, epochs: int) -> np.ndarray:
    """The order in which a seed's run sees the training images, one row per epoch."""
    rng = np.random.default_rng([seed, images])
    return np.stack([rng.permutation(images) for _ in range(epochs)]).astype(np.int32)


def training_batches(x, y, seeds: list[int], epochs: int, batch_size: int):
    """A tf.data pipeline of ``epochs`` epochs of batches, each seed in its own order.

    One seed: ``(x_batch, y_batch)``; several: ``((x_1, …, x_N), (y_1, …, y_N))``, one
    batch per seed. The last batch of an epoch is the remainder, as Keras makes it. Built
    as Keras builds its own pipeline for arrays (batches gathered by index, in parallel,
    in order), which a measured 25% slower first version was not.
    """
    import tensorflow as tf

    orders = np.stack([epoch_orders(s, len(x), epochs) for s in seeds], axis=-1)  # (epochs, images, seeds)
    several = len(seeds) > 1

    def gather(index, arrays):  # index: (batch, seeds)
        images, labels = arrays
        if not several:
            return tf.gather(images, index[:, 0]), tf.gather(labels, index[:, 0])
        return (tuple(tf.gather(images, index[:, k]) for k in range(len(seeds))),
                tuple(tf.gather(labels, index[:, k]) for k in range(len(seeds))))

    full, rest = divmod(len(x), batch_size)

    def epoch_batches(order):  # whole batches cut by one reshape, then the remainder: not image by image
        batches = tf.data.Dataset.from_tensor_slices(tf.reshape(order[:full * batch_size], (full, batch_size, -1)))
        return batches.concatenate(tf.data.Dataset.from_tensors(order[full * batch_size:])) if rest else batches

    indices = tf.data.Dataset.from_tensor_slices(orders).flat_map(epoch_batches)
    # repeated past the end only so that Keras, which stops after epochs × steps, never hits
    # the end and warns "ran out of data"; no batch beyond the last epoch is trained on
    batches = tf.data.Dataset.zip((indices.repeat(), tf.data.Dataset.from_tensors((x, y)).repeat()))
    return batches.map(gather, num_parallel_calls=tf.data.AUTOTUNE).with_options(dataset_options()).prefetch(tf.data.AUTOTUNE)


def dataset_options():
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False  # its tuning thread competes with training on few cores
    options.experimental_optimization.apply_default_optimizations = False  # as Keras's own pipeline
    return options


def validation_batches(x, y, branches: int, batch_size: int):
    """The validation set for N branches: every branch judged on the same images."""
    import tensorflow as tf

    def to_every_branch(images, labels):  # a named function: AutoGraph reads its source (a lambda it warns about)
        return (images,) * branches, (labels,) * branches

    return (tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
            .map(to_every_branch).with_options(dataset_options()))
