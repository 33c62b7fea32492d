"""baseline-cnn — one 5×5 convolution, one pool, one Dense layer: 99.1% on MNIST.

What it teaches: a single convolutional layer already beats any plain MLP. 32
filters of 5×5 slide over the digit, max pooling keeps the strongest response in
each 2×2 window, and a Dense(128) head classifies. Simple, fast, and the best
accuracy per second among the article models.

Source: "手写数字识别之卷积神经网络版" (article 001, 2018), after Jason Brownlee's
"Handwritten Digit Recognition using CNNs". Conv2D(32, 5×5, relu) → MaxPool 2 →
Dropout .3 → Flatten → Dense 128 relu → Dense 10 softmax; Adam with its defaults,
categorical cross-entropy, batch 200, 10 epochs, ``numpy.random.seed(7)``,
validating on the test set. Published: 99.11% test accuracy, loss 0.0282.
"""

import keras
from keras import layers

from zoo import Architecture, Knob, Published, Recipe, Source, hookimpl

ARTICLE = Source("手写数字识别之卷积神经网络版", "Chinese blog post", 2018, article_file="001_3308b68fcfa81baa.txt")


# What a class can change and see (zoo compare baseline-cnn --vary dropout=0,0.3); the
# defaults are the article's, so declaring them changes no result.
KNOBS = (
    Knob("dropout", 0.3, "share of the pooled features dropped at each training step (the article: 0.3)",
         low=0.0, high=0.95),
    Knob("filters", 32, "5×5 filters in the convolution (the article: 32)", low=1, high=512),
    Knob("dense_units", 128, "units of the hidden Dense layer (the article: 128)", low=1, high=4096),
)


def build(input_shape, num_classes, dropout=0.3, filters=32, dense_units=128):
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(filters, (5, 5), activation="relu"),  # 28×28 → 24×24×32
            layers.MaxPooling2D(pool_size=(2, 2)),               # → 12×12×32
            layers.Dropout(dropout),
            layers.Flatten(),                                    # 4,608 numbers
            layers.Dense(dense_units, activation="relu"),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="baseline_cnn",
    )


RECIPE = Recipe(
    name="article",
    # optimizer='adam': Keras 2.1's Adam(lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7), same in Keras 3.
    optimizer={"class_name": "Adam", "learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    loss="categorical_crossentropy",
    batch_size=200,
    epochs=10,
    validation="test",
    source=ARTICLE,
    published=Published(test_accuracy=0.9911, test_loss=0.0282),
)


@hookimpl
def zoo_register_architectures(register):
    register(
        Architecture(
            name="baseline-cnn",
            title="Baseline CNN: one 5×5 convolution",
            summary="Conv2D(32, 5×5) → max pool → dropout → Dense(128) → softmax. One "
                    "convolutional layer is enough to pass 99% on MNIST in a few epochs.",
            teaches="What a 5×5 kernel sees; how 'valid' convolution shrinks 28 to 24; how pooling "
                    "halves it; why the first Dense layer still holds 590k of the 592k weights.",
            source=ARTICLE,
            input_kind="image",
            build=build,
            recipes=(RECIPE,),
            knobs=KNOBS,
            tags=("article", "cnn", "dropout"),
            notes=(
                "Conv2D: 32 × (5×5×1) + 32 = 832 weights do all the feature finding; "
                "Dense: 4,608 × 128 + 128 = 589,952 weights decide.",
                "The article validates on the test set each epoch; its 99.11% is the test accuracy "
                "after the last epoch, picked by nobody, so it is still a fair number.",
            ),
            pitfalls=(
                "The article is written channels-first: K.set_image_dim_ordering('th') and "
                "input_shape=(1, 28, 28). Keras 3 on CPU wants channels-last (28, 28, 1); the data "
                "module chooses the layout, the model is the same.",
                "The article calls numpy.random.seed(7), which alone did not make Keras 2 runs repeatable "
                "(TensorFlow had its own seed). The zoo seeds Python, NumPy and the backend together with "
                "--seed, the same for every model in a comparison, so 7 is not used.",
            ),
        )
    )
