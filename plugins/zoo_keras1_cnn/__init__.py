"""keras1-cnn — the CNN that shipped with Keras as ``examples/mnist_cnn.py``.

What it teaches: two small 3×3 convolutions find strokes and corners, max pooling
halves the resolution, dropout fights over-fitting, and a Dense head decides. This
exact file was the first CNN many people ever ran.

Source: part 2 of "Keras之MNIST识别" (article 000, 2019), which copies the Keras 1/2
example. Conv2D(32, 3×3, padding=same) → relu → Conv2D(32, 3×3) → relu → MaxPool 2
→ Dropout .25 → Flatten → Dense 128 → relu → Dropout .5 → Dense 10 → softmax;
``optimizer='adadelta'``, categorical cross-entropy, batch 128, 12 epochs, with the
test set passed as validation data.
"""

import keras
from keras import layers

from zoo import Architecture, Knob, Recipe, Source, hookimpl

ARTICLE = Source("Keras之MNIST识别 (part 2: the Keras mnist_cnn.py example)", "Chinese blog post", 2019,
                 article_file="000_378691a82c87a757.txt")


# The example's filter count (both convolutions), as a knob a class can change.
FILTERS = Knob("filters", 32, "filters of each 3×3 convolution (the example: 32)", low=1, high=256)


def build(input_shape, num_classes, filters=32):
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(filters, (3, 3), padding="same"),  # 28×28 stays 28×28
            layers.Activation("relu"),
            layers.Conv2D(filters, (3, 3)),                  # 'valid': 28×28 → 26×26
            layers.Activation("relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),      # 26×26 → 13×13
            layers.Dropout(0.25),
            layers.Flatten(),                           # 13·13·32 = 5,408 numbers
            layers.Dense(128),
            layers.Activation("relu"),
            layers.Dropout(0.5),
            layers.Dense(num_classes),
            layers.Activation("softmax"),
        ],
        name="keras1_cnn",
    )


RECIPE = Recipe(
    name="article",
    # optimizer='adadelta' meant Keras 2's Adadelta(lr=1.0, rho=0.95, epsilon=1e-7).
    optimizer={"class_name": "Adadelta", "learning_rate": 1.0, "rho": 0.95, "epsilon": 1e-7},
    loss="categorical_crossentropy",
    batch_size=128,
    epochs=12,
    validation="test",
    source=ARTICLE,
    notes=("The article prints no result; Keras's own example reported about 99.25% after 12 epochs.",),
)


@hookimpl
def zoo_register_architectures(register):
    register(
        Architecture(
            name="keras1-cnn",
            title="Keras 1 example CNN (mnist_cnn.py)",
            summary="Two 3×3 convolutions of 32 filters, one max pool, dropout, and a Dense(128) "
                    "head: the convolutional example that shipped with early Keras.",
            teaches="Convolutions share one small kernel across the whole image; 'same' versus "
                    "'valid' padding; pooling; dropout; why the Dense layer after Flatten holds "
                    "most of the weights (5,408 × 128).",
            source=ARTICLE,
            input_kind="image",
            build=build,
            knobs=(FILTERS,),
            recipes=(RECIPE,),
            tags=("article", "cnn", "dropout"),
            notes=(
                "The two convolutions have only 320 + 9,248 weights; the Dense(128) after Flatten "
                "has 692,352. Convolutions are cheap in weights and expensive in arithmetic.",
                "The first convolution keeps 28×28 ('same' padding), the second shrinks to 26×26 "
                "('valid'): a 3×3 kernel fits 26 times across 28 pixels.",
                "703,210 parameters, as the article's code builds it: 13×13×32 = 5,408 numbers reach "
                "Dense(128). The 813,802 sometimes quoted needs both convolutions padded 'same' "
                "(14×14×32 = 6,272); Keras's later example pads neither (12×12×32, 600,810).",
            ),
            pitfalls=(
                "optimizer='adadelta' in Keras 3 means learning_rate=0.001, a thousand times smaller "
                "than Keras 2's 1.0: the model barely trains. The recipe passes 1.0 explicitly.",
                "The article validates on the test set every epoch, so its 'val' numbers are test "
                "numbers; the zoo holds out part of the training set unless told --validate-on test.",
            ),
        )
    )
