"""deep-bn-cnn — three convolution blocks with batch normalisation: 99.35% on MNIST.

What it teaches: batch normalisation, and how one wrong argument silently changes
what it does. The article writes ``BatchNormalization(axis=1)`` on channels-last
data, shaped (batch, rows, columns, channels). Axis 1 is the image *rows*, not the
channels: the layer learns one scale and shift per row (13 rows, then 7) and shares
it across every column and channel. That is why its summary shows 52 = 4 × 13 and
28 = 4 × 7 parameters. The network still trains — it still normalises — just not
per feature map, as batch norm for convolutions is meant to.

Source: "CNN实现MNIST数据集准确率99.35%" (article 003, 徐静, 2017). Adadelta (Keras 2
defaults), categorical cross-entropy, batch 64, 50 epochs, ``validation_split=0.2``;
test accuracy 99.35%, loss 0.0378; 1,886,250 parameters of which 40 non-trainable.

``deep-bn-cnn`` is built exactly as published; ``deep-bn-cnn-fixed`` normalises the
channels (axis=-1): 4 × 48 and 4 × 64 parameters instead.
"""

import keras
from keras import layers

from zoo import Architecture, Knob, Published, Recipe, Source, hookimpl

ARTICLE = Source("CNN实现MNIST数据集准确率99.35%", "Chinese blog post (徐静)", 2017, article_file="003_2687b91c4022380c.txt")

AS_PUBLISHED_AXIS = 1  # the article's axis: image rows on channels-last data
CHANNELS_AXIS = -1     # what batch norm after a convolution should normalise


def knobs(default_axis):
    """What a class can change: the axis (the article's bug, or its fix) and how fast the moving
    statistics follow the batches (Keras's default momentum, 0.99, needs hundreds of steps)."""
    return (
        Knob("bn_axis", default_axis, "the axis batch normalisation normalises over: 1 the image rows "
             "(the article's, on channels-last data), -1 the channels", (1, -1)),
        Knob("bn_momentum", 0.99, "how much of its moving mean and variance batch norm keeps at each step "
             "(Keras's default 0.99; 0.9 settles ten times sooner)", low=0.0, high=0.9999),
    )


def make_build(default_axis):
    def build(input_shape, num_classes, bn_axis=default_axis, bn_momentum=0.99):
        return keras.Sequential(
            [
                keras.Input(shape=input_shape),
                layers.Conv2D(32, kernel_size=(3, 3), strides=(1, 1)),  # → 26×26×32
                layers.Activation("relu"),
                layers.MaxPooling2D(pool_size=(2, 2)),                   # → 13×13×32
                layers.ZeroPadding2D((1, 1)),                            # → 15×15×32
                layers.Conv2D(48, kernel_size=(3, 3)),                   # → 13×13×48
                layers.Activation("relu"),
                layers.BatchNormalization(epsilon=1e-6, axis=bn_axis, momentum=bn_momentum),
                layers.MaxPooling2D(pool_size=(2, 2)),                   # → 6×6×48
                layers.ZeroPadding2D((1, 1)),                            # → 8×8×48
                layers.Conv2D(64, kernel_size=(2, 2)),                   # → 7×7×64
                layers.Activation("relu"),
                layers.BatchNormalization(epsilon=1e-6, axis=bn_axis, momentum=bn_momentum),
                layers.MaxPooling2D(pool_size=(2, 2)),                   # → 3×3×64
                layers.Dropout(0.25),
                layers.Flatten(),                                        # 576 numbers
                layers.Dense(3168),
                layers.Activation("relu"),
                layers.Dense(num_classes),
                layers.Activation("softmax"),
            ],
            name="deep_bn_cnn" if bn_axis == AS_PUBLISHED_AXIS else "deep_bn_cnn_fixed",
        )

    return build


def make_recipe(published):
    return Recipe(
        name="article",
        # keras.optimizers.Adadelta() in Keras 2: lr=1.0, rho=0.95, epsilon=1e-7 (Keras 3 defaults to lr=0.001).
        optimizer={"class_name": "Adadelta", "learning_rate": 1.0, "rho": 0.95, "epsilon": 1e-7},
        loss="categorical_crossentropy",
        batch_size=64,
        epochs=50,  # the article sets epochs = 12 at the top but calls fit(..., epochs=50)
        validation="split:0.2",
        source=ARTICLE,
        published=published,
        notes=("The article trained for about 4 hours on a PC CPU (~170 s per epoch).",),
    )


COMMON_PITFALLS = (
    "Keras 3 Adadelta() defaults to learning_rate=0.001 (Keras 2: 1.0); the recipe passes 1.0.",
    "The article's code sets epochs = 12 and then trains for 50; the recipe follows the fit call.",
)


@hookimpl
def zoo_register_architectures(register):
    register(
        Architecture(
            name="deep-bn-cnn",
            title="Deep CNN with batch norm, as published (axis=1)",
            summary="Three convolution blocks (32, 48, 64 filters) with zero padding, max pooling and "
                    "batch normalisation, then a wide Dense(3168) head. Built exactly as the article "
                    "wrote it, including BatchNormalization(axis=1) on channels-last data.",
            teaches="Batch normalisation and its axis argument; zero padding; how a parameter count "
                    "(52 and 28 BN weights) exposes a bug that accuracy alone hides.",
            source=ARTICLE,
            input_kind="image",
            build=make_build(AS_PUBLISHED_AXIS),
            knobs=knobs(AS_PUBLISHED_AXIS),
            recipes=(make_recipe(Published(test_accuracy=0.9935, test_loss=0.0378)),),
            tags=("article", "cnn", "batchnorm", "dropout"),
            notes=(
                "axis=1 on (batch, 13, 13, 48) data is the 13 image rows: one γ, β, mean and variance "
                "per row, shared by all 13 columns and 48 channels. 4 × 13 = 52 parameters, and after "
                "the second block 4 × 7 = 28. The moving mean and variance (2 × 13 + 2 × 7 = 40) are the "
                "40 non-trainable parameters in the article's summary.",
                "On channels-first data (batch, 48, 13, 13) axis=1 would have been right: the code looks "
                "like it was copied from a channels-first example.",
                "The Dense(3168) layer holds 1,827,936 of the 1,886,250 parameters.",
                "deep-bn-cnn-fixed normalises per channel (axis=-1), as batch norm after a "
                "convolution should.",
            ),
            pitfalls=(
                "BatchNormalization(axis=1) on channels-last images normalises rows, not channels.",
                *COMMON_PITFALLS,
            ),
        )
    )
    register(
        Architecture(
            name="deep-bn-cnn-fixed",
            title="Deep CNN with batch norm, corrected (axis=-1, per channel)",
            summary="The deep-bn-cnn network with batch normalisation over the channels, as intended: "
                    "one scale and shift per feature map (48, then 64).",
            teaches="What batch normalisation after a convolution should normalise: each feature map "
                    "across the batch and all positions.",
            source=ARTICLE,
            input_kind="image",
            build=make_build(CHANNELS_AXIS),
            knobs=knobs(CHANNELS_AXIS),
            recipes=(make_recipe(None),),
            tags=("variant", "cnn", "batchnorm", "dropout"),
            notes=(
                "4 × 48 = 192 and 4 × 64 = 256 BN parameters instead of 52 and 28; 224 of them are "
                "moving statistics (non-trainable).",
                "Not from the article: a correction of it. It uses the article's recipe unchanged so the "
                "two can be compared.",
            ),
            pitfalls=COMMON_PITFALLS,
        )
    )
