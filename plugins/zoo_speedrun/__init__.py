"""speedrun — how fast can a laptop CPU reach 99% on MNIST? Not from an article: a race.

What it teaches: that speed is a design problem, and that the honest measure of a
recipe is the compute it spends (6 × multiply-accumulates × images seen), which is the
same on every machine. Five ideas carry this model to 99% in 0.24 TFLOP of training:

* **Space-to-depth.** The 28×28×1 image is cut into 2×2 tiles and each tile's four
  pixels become four channels: 14×14×4, losing nothing. Convolutions on fewer,
  deeper positions keep the CPU's vector units busy.
* **Small and normalised.** Two 3×3 convolutions of only 16 and 32 filters, each
  followed by batch normalisation: 0.38 M multiply-accumulates per image, a third
  of the previous design's 1.28 M. Batch normalisation is what lets so small a
  network take a high learning rate (0.015) without diverging.
* **A schedule instead of more epochs.** Adam's learning rate warms up over the
  first 20% of steps, then follows a cosine down to 1%: two epochs do what ten of
  a constant rate do.
* **Targets that stop at "sure enough".** With label smoothing (0.1) the loss aims at 0.91
  for the right digit and 0.01 for each other one, not at 1 and 0: once a training image is
  right, the network stops pushing its logits apart and spends its few steps on the images
  it still gets wrong. It costs no arithmetic.
* **Five looks at test time.** To predict, the network sees each image and four copies of it
  shifted one pixel down, up, right and left, and averages the five answers (test-time
  augmentation, as the fastest CIFAR-10 training scripts do). Space-to-depth makes the network
  sensitive to where a stroke falls in its 2×2 tile; the shifted copies average that out.
  Training is untouched; predicting costs five forward passes instead of one
  (``test_views=1`` looks once).

Every choice was made on the validation split (held out of the training set), never
on the test set; the candidates and their numbers are in docs/performance.md.

One knob is about speed alone: ``batch_norm``. By default (``auto``) batch normalisation is
computed with TensorFlow's single fused kernel when Keras runs on TensorFlow (Keras's own
layer on other backends), instead of Keras's separate operations (mean, variance, normalise,
moving averages). Same model, same numbers to float rounding (a test compares outputs and
moving statistics with Keras's layer); a faster step: 1.48× per epoch on a 2-core AVX-512
EPYC, side by side, and no slower on a 2-core AVX2 EPYC (docs/performance.md, "PyTorch as the
peer"). ``batch_norm=keras`` is Keras's layer everywhere.
"""

import keras
from keras import layers, ops

from zoo import Architecture, Knob, Recipe, Source, hookimpl

SOURCE = Source("mnist-zoo speedrun (this project's own design, measured in docs/performance.md)",
                "mnist-zoo", 2026)

BATCH_NORM = Knob("batch_norm", "auto", "how batch normalisation is computed: 'auto' (TensorFlow's one fused kernel "
                  "under TensorFlow, Keras's layer elsewhere), 'keras' (Keras's layer) or 'fused' (the fused kernel: "
                  "the same numbers, a faster step; TensorFlow only)", values=("auto", "keras", "fused"))
TEST_VIEWS = Knob("test_views", 5, "how many views of each image the network averages when it predicts: 5 (the image "
                  "and its copies shifted one pixel down, up, right and left) or 1 (the image alone); training "
                  "always sees the image alone", values=(1, 5))


@keras.saving.register_keras_serializable(package="zoo_speedrun")
class FusedBatchNormalization(layers.Layer):
    """Keras's BatchNormalization (momentum 0.99, epsilon 1e-3, the last axis), computed by
    TensorFlow's fused kernel: one operation where Keras 3 runs several."""

    momentum, epsilon = 0.99, 1e-3

    def build(self, input_shape):
        # autocast=False: under a mixed precision policy the kernel still takes the scale and the
        # statistics in float32, as Keras's own layer keeps them (never cast to bfloat16)
        channels = (input_shape[-1],)
        self.gamma = self.add_weight(shape=channels, initializer="ones", name="gamma", autocast=False)
        self.beta = self.add_weight(shape=channels, initializer="zeros", name="beta", autocast=False)
        self.moving_mean = self.add_weight(shape=channels, initializer="zeros", name="moving_mean", trainable=False,
                                           autocast=False)
        self.moving_variance = self.add_weight(shape=channels, initializer="ones", name="moving_variance",
                                               trainable=False, autocast=False)

    def call(self, x, training=False):
        import tensorflow as tf

        dtype = x.dtype
        x = tf.cast(x, "float32")  # statistics in float32, as Keras's layer keeps them under mixed precision
        if not training:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(x, self.gamma, self.beta, self.moving_mean,
                                                       self.moving_variance, epsilon=self.epsilon, is_training=False)
            return tf.cast(y, dtype)
        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(x, self.gamma, self.beta, epsilon=self.epsilon)
        # The kernel hands back the unbiased variance (n - 1); Keras's layer averages the biased one (n).
        n = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), "float32")
        variance = variance * (n - 1) / n
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1 - self.momentum))
        return tf.cast(y, dtype)


@keras.saving.register_keras_serializable(package="zoo_speedrun")
class ShiftedViews(layers.Layer):
    """When predicting: each image, then four copies of it shifted one pixel down, up, right and
    left (zeros fill the edge a shift leaves), stacked along the batch: five views of every image
    go through the network. While training: the image alone, so training costs what it did."""

    shifts = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))  # (rows, columns); the image itself first
    test_time_views = len(shifts)  # zoo's anatomy reads it: predicting costs this many forward passes

    def call(self, images, training=False):
        if training:
            return images
        rows, cols = images.shape[1], images.shape[2]
        padded = ops.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)))
        return ops.concatenate([padded[:, 1 - down:1 - down + rows, 1 - right:1 - right + cols, :]
                                for down, right in self.shifts], axis=0)

    def compute_output_shape(self, input_shape):
        return input_shape  # per image; the views only lengthen the batch, whose size Keras leaves open


@keras.saving.register_keras_serializable(package="zoo_speedrun")
class AverageOfViews(layers.Layer):
    """When predicting: the mean of the class probabilities of an image's views (ShiftedViews put
    them one after another along the batch). While training: each image's own probabilities."""

    views = ShiftedViews.test_time_views

    def call(self, probabilities, training=False):
        if training:
            return probabilities
        return ops.mean(ops.reshape(probabilities, (self.views, -1, probabilities.shape[-1])), axis=0)

    def compute_output_shape(self, input_shape):
        return input_shape


def batch_normalization(kind):
    if kind == "auto":  # the fastest correct kernel on this backend
        kind = "fused" if keras.backend.backend() == "tensorflow" else "keras"
    if kind == "fused":
        if keras.backend.backend() != "tensorflow":
            raise ValueError(f"batch_norm=fused calls a TensorFlow kernel: not on Keras's "
                             f"{keras.backend.backend()} backend (use batch_norm=keras)")
        return FusedBatchNormalization()
    return layers.BatchNormalization()


def conv_block(filters, batch_norm="auto"):
    # The convolution needs no bias: batch normalisation's shift does that job.
    return [layers.Conv2D(filters, (3, 3), padding="same", use_bias=False),
            batch_normalization(batch_norm),
            layers.Activation("relu")]


def build(input_shape, num_classes, batch_norm="auto", test_views=5):
    rows, cols, channels = input_shape
    looking_five_times = test_views == 5
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            *([ShiftedViews()] if looking_five_times else []),
            # space-to-depth: (28, 28, 1) → (14, 2, 14, 2) → (14, 14, 2, 2) → (14, 14, 4)
            layers.Reshape((rows // 2, 2, cols // 2, 2 * channels)),
            layers.Permute((1, 3, 2, 4)),
            layers.Reshape((rows // 2, cols // 2, 4 * channels)),
            *conv_block(16, batch_norm),    # → 14×14×16
            layers.MaxPooling2D((2, 2)),    # → 7×7×16
            *conv_block(32, batch_norm),    # → 7×7×32
            layers.MaxPooling2D((2, 2)),    # → 3×3×32
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(num_classes, activation="softmax"),
            *([AverageOfViews()] if looking_five_times else []),
        ],
        name="speedrun",
    )


RECIPE = Recipe(
    name="race",
    optimizer={"class_name": "Adam", "learning_rate": 0.015, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    schedule={"kind": "warmup_cosine", "warmup": 0.2, "start": 0.1, "alpha": 0.01},
    loss="sparse_categorical_crossentropy",
    batch_size=128,
    epochs=2,
    label_smoothing=0.1,
    validation="none",
    source=SOURCE,
    notes=("Chosen on the validation split among 14 candidates of at most 0.30 TFLOP, five seeds each "
           "(docs/performance.md): 98.87% mean validation accuracy, the highest; its test accuracy, "
           "looked at only afterwards, was 99.00-99.10% over seeds 42-46.",
           "Label smoothing 0.1 was added on the validation split too: paired with the recipe without it over "
           "design seeds 100-119, +0.11 points of validation accuracy (95% CI +0.07 to +0.15), better on 18 of "
           "20 seeds (docs/performance.md); the test set was not read to choose it. On the test set afterwards, "
           "seeds 42-51: 99.04 +/- 0.10%, six of ten at 99% or more.",
           "Five test-time views (the test_views knob) were chosen on the validation split the same way: the same "
           "trained networks of design seeds 100-119 looking once and five times, +0.09 points of validation "
           "accuracy (95% CI +0.06 to +0.13), better on 18 of 20 seeds. On the test set afterwards, seeds 42-51: "
           "99.15 +/- 0.04%, every seed at 99.09% or more.",
           "The previous design (1.28 M MACs: convolutions of 32 and 64 filters, Dense(256), peak learning "
           "rate 0.005, no batch normalisation) reached 99.09-99.17% in 0.83 TFLOP."),
)


@hookimpl
def zoo_register_architectures(register):
    register(
        Architecture(
            name="speedrun",
            title="Speedrun: 99% on MNIST in seconds on a CPU",
            summary="Space-to-depth input (14×14×4), two 3×3 convolutions of 16 and 32 filters with batch "
                    "normalisation and max pooling, Dense(128), softmax; Adam with warm-up and cosine decay "
                    "and label smoothing for two epochs, and five one-pixel-shifted views averaged to predict: "
                    "99% in 0.24 TFLOP of training. Built for compute and time to accuracy on a CPU, not taken "
                    "from an article.",
            teaches="Training compute (6 × MACs × images) is the machine-independent cost of a recipe. "
                    "Batch normalisation lets a small network learn fast; learning-rate schedules buy "
                    "accuracy that more epochs would cost; looking at a few shifted views when predicting buys "
                    "accuracy with inference arithmetic instead of training; the shape of the work matters on "
                    "real hardware.",
            source=SOURCE,
            input_kind="image",
            build=build,
            recipes=(RECIPE,),
            knobs=(BATCH_NORM, TEST_VIEWS),
            tags=("speed", "cnn"),
            notes=(
                "Space-to-depth loses nothing: every pixel is still there, four to a position.",
                "Almost all of its 43,658 parameters sit in Dense(128) (36,992): the convolutions are small "
                "in weights and cheap in compute (0.11 M and 0.23 M MACs per image).",
                "The five views are two layers of the model (ShiftedViews first, AverageOfViews last), so every "
                "prediction looks five times: zoo evaluate, zoo predict, the classroom, an exported ONNX or LiteRT "
                "file. Without them (test_views=1) the same trained weights score about 0.1 point less.",
            ),
            pitfalls=(
                "Short runs: the warm-up and cosine schedule fill whatever steps the run has, and BatchNorm's "
                "moving statistics (momentum 0.99) need hundreds of steps to forget their start. One epoch of "
                "3,000 images is 22 of the 844 steps the recipe was designed for: it scored 66.47% (seed 42), "
                "below the two-layer mlp, and the run is flagged under-trained. The full recipe takes about 10 s "
                "of training on a 2-core Xeon with AMX; zoo.pretrained('speedrun') needs none.",
                "Timings on a shared or throttled CPU vary by ±30% from run to run: compare medians "
                "over several runs, as benchmarks/speedrun.py does.",
            ),
        )
    )
