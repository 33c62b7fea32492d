"""The built-in datasets: MNIST, Fashion-MNIST and the 8×8 UCI digits.

MNIST and Fashion-MNIST are 70,000 grayscale 28×28 images in ten classes, 60,000 for training and
10,000 for testing, in the same IDX format, so every model in the zoo runs on
either. Fashion-MNIST was made as a harder drop-in replacement: a model that
scores 99% on digits scores around 90% on clothes.

The UCI digits are another handwriting set at another size: 1,797 digits written by 43
people, each a 32×32 bitmap counted down to 8×8 blocks of 0–16 ink pixels. They ship inside
scikit-learn's wheel, so they are always here, offline. Every model that fits 8×8 images
runs on them, and the ones whose poolings would shrink 8×8 to nothing are skipped with the
reason.

A dataset plugin registers ``zoo.Dataset`` objects, exactly as this one does; one whose
arrays come from code rather than files gives a ``loader``, as ``digits`` does.
"""

import numpy as np

from zoo import Dataset, hookimpl

MNIST = Dataset(
    name="mnist",
    description="Handwritten digits 0–9 from American Census Bureau employees and high-school students.",
    class_names=tuple(str(d) for d in range(10)),
    source="Yann LeCun, Corinna Cortes and Christopher J. C. Burges, the MNIST database",
    license="CC BY-SA 3.0 (as Keras's documentation states)",
    npz_names=("mnist.npz",),
    idx_dirs=("mnist", "."),
    keras_loader="mnist",
    sizes=(60000, 10000),
    # sha256 of each array's bytes (file bytes differ between copies; arrays do not)
    checksums={
        "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
        "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
        "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
        "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
    },
)

FASHION_MNIST = Dataset(
    name="fashion-mnist",
    description="Zalando article images: ten kinds of clothing, shoes and bags; a harder drop-in for MNIST.",
    class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    source="Han Xiao, Kashif Rasul and Roland Vollgraf (Zalando Research), Fashion-MNIST",
    license="MIT",
    npz_names=("fashion-mnist.npz", "fashion_mnist.npz"),
    idx_dirs=("fashion-mnist", "fashion_mnist"),
    keras_cache_idx_dir="fashion-mnist",
    system_dirs=("/usr/share/datasets/fashion-mnist",),
    system_hint="on Debian or Ubuntu: apt-get install dataset-fashion-mnist",
    keras_loader="fashion_mnist",
    sizes=(60000, 10000),
    # Computed from Debian's dataset-fashion-mnist (0.0~git20200523); its class counts (6,000 and
    # 1,000 per class) and pixel mean/std (0.2860 / 0.3530) match Zalando's published figures.
    checksums={
        "x_train": "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012",
        "y_train": "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7",
        "x_test": "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a",
        "y_test": "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9",
    },
)


DIGITS_TEST_SIZE = 360  # a fixed, stratified fifth of the 1,797, the same on every machine
DIGITS_SPLIT_SEED = 0


def load_uci_digits() -> dict:
    """scikit-learn's bundled digits as uint8 8×8 images (0–16 ink counts scaled to 0–255),
    split once into a stratified test fifth that never changes."""
    from sklearn.datasets import load_digits

    from zoo.data import stratified_subset

    bunch = load_digits()
    images = np.round(bunch.images * (255 / 16)).astype("uint8")
    labels = bunch.target.astype("uint8")
    test = stratified_subset(labels, DIGITS_TEST_SIZE, DIGITS_SPLIT_SEED)
    train = np.setdiff1d(np.arange(len(labels)), test)
    return {"x_train": images[train], "y_train": labels[train], "x_test": images[test], "y_test": labels[test]}


DIGITS = Dataset(
    name="digits",
    description="The UCI optical-recognition digits: 1,797 handwritten digits at 8×8, from 43 writers.",
    class_names=tuple(str(d) for d in range(10)),
    source="E. Alpaydin and C. Kaynak, Optical Recognition of Handwritten Digits (UCI), as scikit-learn ships it",
    license="CC BY 4.0 (UCI Machine Learning Repository)",
    image_shape=(8, 8, 1),
    sizes=(1437, 360),
    loader=load_uci_digits,
    located="scikit-learn's bundled copy (sklearn.datasets.load_digits)",
    # of the arrays above (scikit-learn 1.9's digits.csv.gz; the file has not changed since 2011)
    checksums={
        "x_train": "44b7f31ad5609d7569f9f28ab8b72fe376dce433b9dc2631369c982b028fa928",
        "y_train": "d5a36ce2b4725cfa93daed5e8fce480c1d052d8f81c6e2fe2f83097022ee282b",
        "x_test": "28e081a7eaab2b700de0d8c7fdcefc7a4270662db1fbe306d35984b63e46c39a",
        "y_test": "dc71cdfc564b17cacf1a989fafdf857a1b581e18fabe2b5741666ace0dac7dc6",
    },
)


@hookimpl
def zoo_register_datasets(register):
    register(MNIST)
    register(FASHION_MNIST)
    register(DIGITS)
