"""Tuning experiment for ``params/transfer-quick.yaml``: which frozen features feed its head best.

    .venv/bin/python benchmarks/quick_features.py [--data DIR] [--seeds 42 1]

The quick recipe trains a softmax head on EfficientNet-Lite0's pooled ImageNet features,
computed once. This script asks whether other features, still computed once, serve the head
better, on fold 1 of five of the training split (the evaluation split is not read), at the
recipe's 288 px centre squares:

- ``last``: the mean of the last feature map (1,280 numbers), what the recipe uses;
- ``last + block N``: with the mean of block N's output beside it (192 more numbers),
  features from the middle of the network, closer to texture and brushwork;
- ``last + 384 px``: the last map's mean at two image sizes;
- ``last, mirror averaged``: the head's answer averaged over the painting and its mirror.

The head is the notebook's (dropout 0.2, then a softmax layer), trained as section 7 trains
it: 30 epochs of AdamW at 0.003 with a 5% warm-up and a cosine to 1%, label smoothing 0.1,
each painting shown once an epoch, itself or mirrored at random. It is trained here outside
the notebook, so the figures compare feature sets with one another, not with the recipe's
recorded runs. Each figure is the fold's macro-F1 for one seed (195 paintings: a standard
error of about 3 points).
"""

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score

from utils import dataset, loading, paths, pretrained, published
from utils.backend import keras

DATA = paths.PROJECT_ROOT.parent / "shared" / "data" / "impressionist-subset"
SIZE, LARGER = 288, 384
MIDDLE_BLOCKS = ("block12_add", "block13_add", "block14_add")
EPOCHS, BATCH, RATE = 30, 32, 0.003


def feature_maps(size: int, layers: tuple[str, ...]) -> keras.Model:
    """Lite0 at ``size`` px giving the spatial mean of its last map and of ``layers``."""
    base = pretrained.build_efficientnet_lite0(size)
    outputs = {"last": keras.layers.GlobalAveragePooling2D()(base.output)}
    for name in layers:
        outputs[name] = keras.layers.GlobalAveragePooling2D()(base.get_layer(name).output)
    return keras.Model(base.input, outputs)


def features(model: keras.Model, X: np.ndarray) -> dict[str, np.ndarray]:
    """Each output of ``model`` for the images ``X`` and for their mirror images."""
    found = {}
    for mirrored in (False, True):
        images = X[:, :, ::-1] if mirrored else X
        for name, values in model.predict(images, batch_size=64, verbose=0).items():
            found[(name, mirrored)] = np.asarray(values, dtype=np.float32)
    return found


def trained_head(train: np.ndarray, train_mirrored: np.ndarray, y: np.ndarray, seed: int):
    """The notebook's head, trained as section 7 trains it."""
    keras.utils.set_random_seed(seed)
    steps = EPOCHS * int(np.ceil(len(y) / BATCH))
    warmup = max(1, steps // 20)
    rate = keras.optimizers.schedules.CosineDecay(
        0.0, steps - warmup, alpha=0.01, warmup_target=RATE, warmup_steps=warmup
    )
    head = keras.Sequential(
        [
            keras.Input((train.shape[1],)),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    head.compile(
        keras.optimizers.AdamW(rate, weight_decay=5e-4),
        keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
    )
    rng = np.random.default_rng(seed)
    one_hot = keras.utils.to_categorical(y, 10)
    for _ in range(EPOCHS):
        flipped = rng.random(len(y)) < 0.5
        head.fit(np.where(flipped[:, None], train_mirrored, train), one_hot, BATCH, verbose=0)
    return head


def main() -> None:
    """Train the head on each feature set and print the fold's macro-F1 per seed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1])
    args = parser.parse_args()
    files = dataset.collect_files(args.data, holdout_fold=1, holdout_folds=5)
    split = {}
    for size, layers in ((SIZE, MIDDLE_BLOCKS), (LARGER, ())):
        model = feature_maps(size, layers)
        for part, listed in (("train", files.train), ("fold", files.val)):
            arrays, _ = loading.load_split(listed, size, "crop")
            start = time.perf_counter()
            for (name, mirrored), values in features(model, arrays.X).items():
                split[(part, f"{name}@{size}", mirrored)] = values
            split[(part, "y")] = arrays.y
            print(
                f"{part}: {len(arrays.y)} paintings and mirrors at {size} px in "
                f"{time.perf_counter() - start:.0f} s",
                flush=True,
            )
    candidates = {
        "last (the recipe's features)": [f"last@{SIZE}"],
        **{f"last + {block}": [f"last@{SIZE}", f"{block}@{SIZE}"] for block in MIDDLE_BLOCKS},
        f"last + last at {LARGER} px": [f"last@{SIZE}", f"last@{LARGER}"],
    }

    def joined(part: str, names: list[str], mirrored: bool) -> np.ndarray:
        return np.concatenate([split[(part, name, mirrored)] for name in names], axis=1)

    print(f"commit {published.commit()}, {published.machine()}; fold 1 macro-F1 per seed")
    y_train, y_fold = split[("train", "y")], split[("fold", "y")]
    for label, names in candidates.items():
        scores, mirror_scores = [], []
        for seed in args.seeds:
            head = trained_head(
                joined("train", names, False), joined("train", names, True), y_train, seed
            )
            proba = head.predict(joined("fold", names, False), verbose=0)
            scores.append(f1_score(y_fold, proba.argmax(axis=1), average="macro"))
            if names == [f"last@{SIZE}"]:
                proba = (proba + head.predict(joined("fold", names, True), verbose=0)) / 2
                mirror_scores.append(f1_score(y_fold, proba.argmax(axis=1), average="macro"))
        print(
            f"{label:<32} "
            + "  ".join(f"{s:.3f}" for s in scores)
            + f"  mean {np.mean(scores):.3f}"
        )
        if mirror_scores:
            print(
                f"{'last, mirror averaged':<32} "
                + "  ".join(f"{s:.3f}" for s in mirror_scores)
                + f"  mean {np.mean(mirror_scores):.3f}"
            )


if __name__ == "__main__":
    main()
