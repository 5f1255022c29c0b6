"""Tuning experiment for ``params/transfer.yaml``: test-time views at two scales.

    .venv/bin/python benchmarks/accuracy.py --only transfer --holdout-fold 1
    .venv/bin/python benchmarks/view_sets.py out/benchmarks/accuracy-<time>/transfer-seed42

A model trained on crops answers from ten views of each painting (``evaluation.predict_proba``:
the centre and four corners, each mirrored). This script takes a finished tuning run (one that
held out a fold of the training split; the evaluation split is never read) and scores other
sets of views of the same fold with the same model, with no training:

- the whole painting shrunk to the crop size, and its mirror (a second, coarser scale);
- the ten views taken from the painting enlarged to 352 or 384 px (a finer scale);
- each of these averaged with the ten views.

Printed: accuracy and macro-F1 on the fold for each set.
"""

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score

from utils import dataset, evaluation, images, loading, predict, published

FINER = (352, 384)


def main() -> None:
    """Score each set of views on the run's held-out fold."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a finished run with holdout_fold set")
    args = parser.parse_args()
    settings = json.loads((args.run_dir / "metrics.json").read_text())["parameters"]
    if not settings["holdout_fold"]:
        raise SystemExit(f"{args.run_dir} was scored on its validation split: tune on a fold.")
    trained = predict.load_trained_model(args.run_dir / "model.keras")
    model, crop = trained.model, trained.model.input_shape[1]
    files = dataset.collect_files(
        Path(settings["data_dir"]),
        holdout_fold=settings["holdout_fold"],
        holdout_folds=settings["holdout_folds"],
    )
    fold, _ = loading.load_split(files.val, trained.image_size, trained.resize_mode)

    def proba(X: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(X, batch_size=64, verbose=0), dtype=np.float32)

    ten = evaluation.predict_proba(model, fold.X)
    whole = np.stack([images.resize(x, crop) for x in fold.X])
    coarse = (proba(whole) + proba(whole[:, :, ::-1])) / 2
    view_sets = {
        "ten views (the recipe's)": ten,
        "whole painting and mirror": coarse,
        "ten + whole and mirror (12 views)": (10 * ten + 2 * coarse) / 12,
    }
    for size in FINER:
        finer = evaluation.predict_proba(model, np.stack([images.resize(x, size) for x in fold.X]))
        view_sets[f"ten views at {size} px"] = finer
        view_sets[f"ten views + ten at {size} px"] = (ten + finer) / 2
    print(
        f"{args.run_dir}: {len(fold.y)} paintings of fold {settings['holdout_fold']}; "
        f"commit {published.commit()}"
    )
    for label, p in view_sets.items():
        chosen = p.argmax(axis=1)
        print(
            f"{label:<36} accuracy {np.mean(chosen == fold.y):.3f}  "
            f"macro-F1 {f1_score(fold.y, chosen, average='macro'):.3f}"
        )


if __name__ == "__main__":
    main()
