"""keras-docs-cnn — the CNN from the Keras documentation, trained two ways.

What it teaches: stacking two 3×3 convolutions (32 then 64 filters) before pooling
sees a 5×5 neighbourhood with fewer weights than one 5×5 layer, and gives the best
article-model accuracy for its size. Two articles train the same network with different
optimizers — Adam and Adadelta — a clean lesson in how much the recipe matters.

Sources: "Keras 入门指南:30 分钟数字识别" (article 002, a translation of SitePoint's Keras
digit-recognition tutorial): Adam, sparse categorical cross-entropy, batch 128, 10
epochs → 99.19%, loss 0.0261. "用于 MNIST 数字识别的简单 2D CNN" (article 004, a
translation of "A simple 2D CNN for MNIST digit recognition"): Adadelta, categorical
cross-entropy, batch 128, 10 epochs → 99.04%, loss 0.0296. Both validate on test.
"""

import keras
from keras import layers

from zoo import Architecture, Knob, Published, Recipe, Source, hookimpl

SITEPOINT = Source("Keras 入门指南:30 分钟数字识别 (SitePoint's Keras digit recognition tutorial)",
                   "SitePoint, Chinese translation", None, article_file="002_29fa57618179be68.txt",
                   url="https://www.sitepoint.com/keras-digit-recognition-tutorial/")
TDS = Source("用于 MNIST 数字识别的简单 2D CNN (A simple 2D CNN for MNIST digit recognition)",
             "Towards Data Science, Chinese translation", None, article_file="004_f1bc4b8d210d947e.txt",
             url="https://towardsdatascience.com/a-simple-2d-cnn-for-mnist-digit-recognition-a998dbc1e79a")


# The articles' sizes and dropout rates, as knobs a class can change (zoo info keras-docs-cnn).
KNOBS = (
    Knob("filters", 32, "filters of the first 3×3 convolution; the second has twice as many (the articles: 32, 64)",
         low=1, high=256),
    Knob("dropout", 0.25, "dropout after the pooling (the articles: 0.25)", low=0.0, high=0.95),
    Knob("dense_dropout", 0.5, "dropout after the Dense(128) layer (the articles: 0.5)", low=0.0, high=0.95),
)


def build(input_shape, num_classes, filters=32, dropout=0.25, dense_dropout=0.5):
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(filters, kernel_size=(3, 3), activation="relu"),  # → 26×26×32
            layers.Conv2D(2 * filters, (3, 3), activation="relu"),          # → 24×24×64
            layers.MaxPooling2D(pool_size=(2, 2)),                          # → 12×12×64
            layers.Dropout(dropout),
            layers.Flatten(),                                               # 9,216 numbers
            layers.Dense(128, activation="relu"),
            layers.Dropout(dense_dropout),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="keras_docs_cnn",
    )


ADAM = Recipe(
    name="adam",
    optimizer={"class_name": "Adam", "learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    # The article one-hot encodes its labels and then compiles with the *sparse* loss, which wants
    # integer labels. The zoo keeps the article's loss and feeds it the integer labels it needs.
    loss="sparse_categorical_crossentropy",
    batch_size=128,
    epochs=10,
    validation="test",
    source=SITEPOINT,
    published=Published(test_accuracy=0.9919, test_loss=0.0261),
)

ADADELTA = Recipe(
    name="adadelta",
    # keras.optimizers.Adadelta() in Keras 2 meant lr=1.0; in Keras 3 it means 0.001.
    optimizer={"class_name": "Adadelta", "learning_rate": 1.0, "rho": 0.95, "epsilon": 1e-7},
    loss="categorical_crossentropy",
    batch_size=128,
    epochs=10,
    validation="test",
    source=TDS,
    published=Published(test_accuracy=0.9904, test_loss=0.0296),
)


@hookimpl
def zoo_register_architectures(register):
    register(
        Architecture(
            name="keras-docs-cnn",
            title="Keras documentation CNN: 3×3 conv 32 → 3×3 conv 64",
            summary="Two stacked 3×3 convolutions, a max pool, dropout, Dense(128), dropout, "
                    "softmax. keras-io's mnist_convnet lineage; 1.2M weights, 99.2% on the test set.",
            teaches="Stacked small kernels versus one large kernel; how the recipe (Adam or "
                    "Adadelta) changes the result of the very same network; sparse versus one-hot labels.",
            source=SITEPOINT,
            input_kind="image",
            build=build,
            knobs=KNOBS,
            recipes=(ADAM, ADADELTA),
            tags=("article", "cnn", "dropout"),
            notes=(
                "Two 3×3 convolutions see a 5×5 patch with 9·32 + 9·32·64 weights per output "
                "instead of 25·64 for one 5×5 layer of the same width.",
                "This is the most arithmetic-heavy article model: the second convolution alone does "
                "24·24·64·(3·3·32) ≈ 10.6 million multiply-accumulates per image.",
                "keras-io's mnist_convnet example reports about 99.2% for the same design.",
            ),
            pitfalls=(
                "Article 002 one-hot encodes labels and compiles with sparse_categorical_crossentropy; "
                "they do not match. The 'adam' recipe keeps the sparse loss and integer labels.",
                "Article 004's keras.optimizers.Adadelta() is lr=1.0 in Keras 2 but 0.001 in Keras 3; "
                "the 'adadelta' recipe passes 1.0.",
                "Both articles validate on the test set every epoch.",
            ),
        )
    )
