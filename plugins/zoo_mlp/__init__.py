"""mlp — the smallest network that learns MNIST: one hidden layer of 32 units.

What it teaches: a digit is just 784 numbers. Flatten the image, multiply by a
weight matrix, bend the result with ReLU, and a second matrix plus softmax turns it
into ten probabilities. No convolutions, no notion that neighbouring pixels belong
together, and still about 96% of test digits come out right after two epochs.

Source: part 1 of "Keras之MNIST识别" (article 000, 2019), itself following Morvan
Zhou's Keras tutorials. Dense(32, input_dim=784) → relu → Dense(10) → softmax,
RMSprop(lr=0.001, rho=0.9, epsilon=1e-08), categorical cross-entropy, batch 32,
2 epochs, no validation set.
"""

import keras
from keras import layers

from zoo import Architecture, Knob, Recipe, Source, hookimpl

ARTICLE = Source("Keras之MNIST识别 (part 1: a fully connected network)", "Chinese blog post", 2019,
                 article_file="000_378691a82c87a757.txt")


# The article's one hidden layer has 32 units; a class can try others (--vary hidden_units=32,128).
HIDDEN = Knob("hidden_units", 32, "units of the hidden layer (the article: 32)", low=1, high=4096)


def build(input_shape, num_classes, hidden_units=32):
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),   # 784 pixels, the image flattened
            layers.Dense(hidden_units),       # 784 × 32 weights + 32 biases
            layers.Activation("relu"),
            layers.Dense(num_classes),
            layers.Activation("softmax"),     # ten scores → ten probabilities
        ],
        name="mlp",
    )


RECIPE = Recipe(
    name="article",
    # Every parameter written out: the article's RMSprop(lr=0.001, rho=0.9, epsilon=1e-08, decay=0.0).
    optimizer={"class_name": "RMSprop", "learning_rate": 0.001, "rho": 0.9, "epsilon": 1e-8},
    loss="categorical_crossentropy",
    batch_size=32,
    epochs=2,
    validation="none",
    source=ARTICLE,
    notes=("The article evaluates on the test set once, after training; it shows no accuracy.",),
)


@hookimpl
def zoo_register_architectures(register):
    register(
        Architecture(
            name="mlp",
            title="Multilayer perceptron, 784-32-10",
            summary="A flattened image goes through one hidden Dense layer of 32 ReLU units and a "
                    "10-way softmax. It is the 'hello world' of neural networks: 25,450 weights, "
                    "trained in seconds, around 96% on the test set.",
            teaches="Dense layers, ReLU, softmax and cross-entropy; why 784 inputs × 32 units is "
                    "already 25,088 weights; what a network without spatial structure can and cannot do.",
            source=ARTICLE,
            input_kind="flat",
            build=build,
            knobs=(HIDDEN,),
            recipes=(RECIPE,),
            tags=("article", "mlp", "dense"),
            notes=(
                "Almost all the parameters (25,120 of 25,450) sit in the first layer: every pixel "
                "has its own weight to every hidden unit.",
                "Shuffle the pixels of every image the same way and this model learns exactly as well: "
                "it never uses the fact that neighbouring pixels belong together. CNNs do.",
            ),
            pitfalls=(
                "Keras 3 renamed lr to learning_rate and dropped decay; RMSprop's epsilon default is "
                "1e-7 in Keras 3, so the article's 1e-8 is passed explicitly.",
            ),
        )
    )
