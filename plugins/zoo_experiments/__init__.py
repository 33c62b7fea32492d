"""The built-in experiments: the questions a class asks after "which model is best?".

Each changes one thing in a model from the source articles and keeps everything else: the
same seeds, split and batch order for every variant, so each difference gets a paired test
and an interval. The first value of each knob is the reference. The quick defaults take a
few minutes on a 2-core CPU; ``zoo experiment NAME --full`` runs the article's recipe.
"""

from zoo import Experiment, Source, hookimpl

ZOO = Source("mnist-zoo's experiments", "mnist-zoo", 2026)

EXPERIMENTS = (
    Experiment(
        name="adadelta-learning-rate",
        question="What does Keras 3's Adadelta default (learning rate 0.001) do to a recipe written for Keras 2's 1.0?",
        model="keras1-cnn",
        vary={"learning_rate": [1.0, 0.001]},
        seeds=3, epochs=1, limit=5000,
        notice="The article's code says optimizer='adadelta'. Keras 2 read that as learning rate 1.0, Keras 3 as "
               "0.001: the same line trains a thousand times slower. Look at how far below the reference it lands. The "
               "quick run is one epoch of 5,000 images, flagged under-trained on purpose: a short run is enough to "
               "see a step a thousand times too small (the reference is not what keras1-cnn reaches either).",
        full={"epochs": None, "limit": None},
        source=ZOO,
    ),
    Experiment(
        name="batchnorm-axis",
        question="What does BatchNormalization(axis=1) on channels-last images cost, against normalising the "
                 "channels (axis=-1)?",
        model="deep-bn-cnn",
        vary={"bn_axis": [1, -1]},
        # A quick run is too short for momentum 0.99's moving statistics to settle (measured: at 423
        # steps the corrected axis still sat at 64 ± 23%), which would measure batchnorm-short-run
        # instead of the axis; both variants get momentum 0.9 here, the article's 0.99 with --full.
        set={"bn_momentum": 0.9},
        seeds=3, epochs=2, limit=10000,
        notice="axis=1 normalises the 13 image rows, not the 48 channels: 52 parameters where 192 belong. "
               "Watch whether accuracy can tell the two apart, and with how many seeds: the parameter count "
               "shows the bug at once. (The quick run sets BatchNorm's momentum to 0.9 for both, so a short "
               "run measures the axis and not the moving statistics: see batchnorm-short-run. It is two epochs of "
               "10,000 images, flagged under-trained: a difference in a short run, not at the full 50 epochs.)",
        full={"epochs": None, "limit": None, "set": {}},
        source=ZOO,
    ),
    Experiment(
        name="dropout",
        question="What does dropout buy the baseline CNN: none, the article's 0.3, or 0.5?",
        model="baseline-cnn",
        vary={"dropout": [0.0, 0.3, 0.5]},
        seeds=3, epochs=2, limit=5000,
        notice="Dropout fights overfitting, which needs many epochs on little data to show; in a short run it "
               "can cost a little. The interval says whether this n could see a difference at all. The quick run is "
               "two epochs of 5,000 images, flagged under-trained: --full runs the article's ten epochs.",
        full={"epochs": None, "limit": None, "seeds": 5},
        source=ZOO,
    ),
    Experiment(
        name="validate-on-test",
        question="How much does choosing the epoch by test accuracy flatter a model?",
        model="baseline-cnn",
        kind="validate-on-test",
        # fifteen epochs of 3,000 images: the CNN fits them within a few, and from there its test
        # accuracy moves by chance, which picking the best epoch on the test set rewards. The runs
        # validate on the held-out split; the test set is scored after every epoch beside it.
        seeds=5, epochs=15, limit=3000,
        notice="The article watches test accuracy every epoch and reports the best. Picking that epoch rewards the "
               "test set's luckiest moment; picking it on the held-out validation split does not look at the test "
               "set at all, so its test accuracy is an honest figure. The difference is measured seed by seed. The "
               "quick run is fifteen epochs of 3,000 images (flagged under-trained against the article's full "
               "data): small enough to fit in a few epochs, so the later epochs' test accuracy moves by chance.",
        full={"epochs": None, "limit": None},
        source=ZOO,
    ),
    Experiment(
        name="batchnorm-short-run",
        question="Why can a BatchNorm network sit near chance after a few hundred steps?",
        model="deep-bn-cnn-fixed",
        vary={"bn_momentum": [0.99, 0.9]},
        # 1 epoch of 21,000 images (18,900 after the validation split) at batch 64: 296 steps, the
        # "few hundred" of the question (measured: 0.99 at 22-38%, 0.9 at 94-97%, three seeds)
        seeds=3, epochs=1, limit=21000,
        notice="In inference mode BatchNorm reads moving averages that start at mean 0 and variance 1 and move "
               "(1 − momentum) of the way to each batch's statistics per step. After this run's 296 steps, momentum "
               "0.99 still keeps 0.99^296 ≈ 5% of that start, enough to keep the test accuracy far below the "
               "training accuracy (the warning under the table gives both); at 0.9, 0.9^296 of it remains: nothing.",
        full={"epochs": 2, "limit": None},
        source=ZOO,
    ),
)


@hookimpl
def zoo_register_experiments(register):
    for experiment in EXPERIMENTS:
        register(experiment)
