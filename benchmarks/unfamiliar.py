"""How often "resembles none of the paintings the model knows" is right, and how often wrong.

    .venv/bin/python benchmarks/unfamiliar.py                      # both recipes' sizes
    .venv/bin/python benchmarks/unfamiliar.py --data DIR --params params/transfer.yaml

A run's gallery (``utils.similar``) holds its training paintings' ImageNet features, which do
not depend on the network the run trains, only on the size and resizing of its images. So the
rule is measured here directly, with the functions a run uses, at each recipe's
``image_size`` and ``resize_mode``, on three kinds of image:

- **paintings that did not set the bar:** the evaluation split of ``--data`` (the bar is set
  by the training split alone); a genuine painting flagged there is a false alarm;
- **non-paintings:** every image scikit-image and Matplotlib install (photographs, scans,
  microscopy, drawings, logos, in colour and in grey), read by the project's loader;
- **the synthetic sample's paintings**, which a model trained on real paintings never saw.

The rule was chosen on five folds of the training split (the evaluation split unread): for
each fold, a gallery of the other four sets the bar and the fold is measured. Those figures
are printed for several rules; only the chosen one (``similar.build_gallery``) is then
measured on the evaluation split. The result goes to
``benchmarks/results/unfamiliar.json``.
"""

import argparse
import json
from datetime import date
from pathlib import Path

import matplotlib
import numpy as np
import skimage

from utils import dataset, images, loading, parameters, paths, published, similar

DATA = paths.PROJECT_ROOT.parent / "shared" / "data" / "impressionist-subset"
RESULTS = paths.PROJECT_ROOT / "benchmarks" / "results" / "unfamiliar.json"
RECIPES = ["params/transfer.yaml", "params/transfer-quick.yaml"]
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".tif", ".tiff", ".bmp"}
FOLDS = 5
# Shares of training paintings below the bar tried on the folds.
QUANTILES = (0.005, 0.01, 0.02)


def installed_images() -> list[Path]:
    """The images scikit-image and Matplotlib install with themselves: none is a painting."""
    folders = [
        Path(skimage.__file__).parent / "data",
        Path(matplotlib.get_data_path()) / "sample_data",
    ]
    return sorted(
        path
        for folder in folders
        for path in folder.iterdir()
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
    )


def _scores(rule: str, artists: np.ndarray, gallery: np.ndarray, query: np.ndarray) -> np.ndarray:
    """A painting's closeness to a gallery by one rule: ``nearest`` (the closest painting),
    ``top10`` (the mean of the ten closest) or ``typical`` (the closest artist's mean)."""
    if rule == "typical":
        built = similar.build_gallery([""] * len(gallery), artists.tolist(), gallery)
        return similar.typicality(built, query)
    similarity = np.sort(query @ gallery.T, axis=1)
    return similarity[:, -1] if rule == "nearest" else similarity[:, -10:].mean(axis=1)


def _left_out_scores(rule: str, artists: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """Each gallery painting's closeness to the others by ``rule``, itself left out."""
    if rule == "typical":
        return similar.left_out_typicality(artists.tolist(), gallery)
    similarity = gallery @ gallery.T
    np.fill_diagonal(similarity, -np.inf)
    similarity = np.sort(similarity, axis=1)
    return similarity[:, -1] if rule == "nearest" else similarity[:, -10:].mean(axis=1)


def fold_table(
    artists: np.ndarray, train: np.ndarray, others: np.ndarray, sample: np.ndarray
) -> list[dict]:
    """Each rule and bar on five folds of the training split: the shares of the fold's
    paintings, the non-paintings and the sample's paintings flagged."""
    folds = np.empty(len(artists), dtype=np.int64)
    rng = np.random.default_rng(0)
    for artist in np.unique(artists):
        members = np.flatnonzero(artists == artist)
        rng.shuffle(members)
        folds[members] = np.arange(len(members)) % FOLDS
    rows = []
    for rule in ("nearest", "top10", "typical"):
        for quantile in QUANTILES:
            flagged = []
            for fold in range(FOLDS):
                kept = folds != fold
                gallery, names = train[kept], artists[kept]
                bar = np.quantile(_left_out_scores(rule, names, gallery), quantile, method="lower")
                flagged.append(
                    [
                        float(np.mean(_scores(rule, names, gallery, images) < bar))
                        for images in (train[~kept], others, sample)
                    ]
                )
            paintings, non_paintings, samples = np.array(flagged).T
            rows.append(
                {
                    "rule": rule,
                    "training_paintings_below_the_bar": quantile,
                    "fold_paintings_flagged": {
                        "mean": float(paintings.mean()),
                        "highest": float(paintings.max()),
                    },
                    "non_paintings_flagged": float(non_paintings.mean()),
                    "sample_paintings_flagged": float(samples.mean()),
                }
            )
    return rows


def measure(data: Path, image_size: int, resize_mode: str) -> dict:
    """The chosen rule at one image size: fold figures for every rule, then the evaluation
    split, the non-paintings (each named, with its size) and the sample."""
    files = dataset.collect_files(data)
    loaded = loading.load_files(files, image_size, resize_mode)
    names = files.class_names
    train_artists = np.array([names[label] for label in loaded.train.y])
    train = similar.embed(loaded.train.X)
    validation = similar.embed(loaded.val.X)
    candidates = installed_images()
    others = images.load_images(candidates, image_size, resize_mode)
    sample_files = dataset.collect_files(paths.PROJECT_ROOT / "data" / "sample")
    sample = images.load_images(
        list(sample_files.train.paths) + list(sample_files.val.paths), image_size, resize_mode
    )
    other_features, sample_features = similar.embed(others.X), similar.embed(sample.X)
    gallery = similar.build_gallery([""] * len(train), train_artists.tolist(), train)
    other_scores = similar.typicality(gallery, other_features)
    validation_scores = similar.typicality(gallery, validation)
    return {
        "image_size": image_size,
        "resize_mode": resize_mode,
        "training_paintings": len(train),
        "chosen_on_folds": fold_table(train_artists, train, other_features, sample_features),
        "bar": gallery.familiar_from,
        "evaluation_paintings": len(validation),
        "evaluation_paintings_flagged": int(np.sum(validation_scores < gallery.familiar_from)),
        "non_paintings": [
            {
                "image": f"{candidates[index].parent.name}/{candidates[index].name}",
                "height_width": [int(side) for side in others.original_sizes[row]],
                "typicality": round(float(score), 3),
                "flagged": bool(score < gallery.familiar_from),
            }
            for row, (index, score) in enumerate(zip(others.kept, other_scores, strict=True))
        ],
        "unreadable": [f"{s.path.name}: {s.reason}" for s in others.skipped],
        "sample_paintings": len(sample_features),
        "sample_paintings_flagged": int(
            np.sum(similar.typicality(gallery, sample_features) < gallery.familiar_from)
        ),
    }


def main() -> None:
    """Measure the rule at each recipe's image size and record it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--params", action="append", help="a recipe (default: both transfer)")
    args = parser.parse_args()
    commit = published.commit()
    recipes = {}
    for recipe in args.params or RECIPES:
        settings = parameters.read_yaml(paths.resolve(recipe))
        result = measure(args.data, int(settings["image_size"]), str(settings["resize_mode"]))
        recipes[recipe] = result
        flagged = sum(row["flagged"] for row in result["non_paintings"])
        print(
            f"{recipe}: bar {result['bar']:.3f}; evaluation paintings flagged "
            f"{result['evaluation_paintings_flagged']}/{result['evaluation_paintings']}, "
            f"non-paintings {flagged}/{len(result['non_paintings'])}, sample paintings "
            f"{result['sample_paintings_flagged']}/{result['sample_paintings']}"
        )
        for row in result["chosen_on_folds"]:
            print(
                f"  folds: {row['rule']:<8} {row['training_paintings_below_the_bar']:.1%} below "
                f"the bar: fold paintings {row['fold_paintings_flagged']['mean']:.1%} (highest "
                f"{row['fold_paintings_flagged']['highest']:.1%}), non-paintings "
                f"{row['non_paintings_flagged']:.1%}, sample {row['sample_paintings_flagged']:.1%}"
            )
    record = {
        "rule": (
            f"similarity to the closest artist's typical painting below that of "
            f"{similar.FAMILIAR_SHARE:.0%} of the training paintings, each left out"
        ),
        "data": paths.display(args.data),
        "recipes": recipes,
        "command": "benchmarks/unfamiliar.py",
        "commit": commit,
        "machine": published.machine(),
        "measured": date.today().isoformat(),
    }
    RESULTS.write_text(json.dumps(record, indent=2) + "\n")
    print(f"Recorded in {paths.display(RESULTS)}")


if __name__ == "__main__":
    main()
