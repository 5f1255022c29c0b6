"""Accuracy benchmark on real paintings: the reference, the best student-style network
and this project's recipe, trained on the same split with the same seed, each in a fresh
process.

    .venv/bin/python benchmarks/accuracy.py                 # all three: about 25 min, 2 cores
    .venv/bin/python benchmarks/accuracy.py --only recipe   # one of them
    .venv/bin/python benchmarks/accuracy.py --only recipe --holdout --set num_epochs=60

Data: ``../shared/data/impressionist-subset``: training on ``training/training`` (971
images), evaluation on ``validation/validation`` (259 images). The evaluation split is
only measured after training: no early stopping or checkpoint choice uses it. Tuning
uses ``--holdout``, which trains on 80% of the training split and measures on the rest,
without reading the evaluation split; ``--set`` changes one setting of a configuration.
Earlier recipes, and the choices made by comparing them on the evaluation split, are in
the README with the commit whose version of this script measured them.
Prints a Markdown table of accuracy, macro-F1, training time and peak memory (the
whole process's, libraries included).
"""

import argparse
import json
import resource
import sys
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA = PROJECT_ROOT.parent / "shared" / "data" / "impressionist-subset"
SEED = 42
# --holdout: this share of the training split, stratified, stands in for the evaluation split.
HOLDOUT_SHARE = 0.2
# Each entry is what the notebook's parameters would say (see params/*.yaml).
CONFIGS = {
    "reference": {
        "label": "Reference: one conv layer, Flatten, Dense; SGD 0.01; 200 px; 40 epochs",
        "model": "shallow",
        "filters": 32,
        "image_size": 200,
        "crop_size": 0,
        "optimizer": "sgd",
        "learning_rate": 0.01,
        "num_epochs": 40,
        "label_smoothing": 0.0,
        "cosine": False,
        "colour_jitter": 0.0,
        "precision": "float32",
    },
    "lenet": {
        "label": "Student LeNet: conv blocks 32/64, dense 128, dropout; Adam; 128 px; 50 epochs",
        "model": "lenet",
        "filters": 32,
        "image_size": 128,
        "crop_size": 0,
        "optimizer": "adam",
        "learning_rate": 0.001,
        "num_epochs": 50,
        "label_smoothing": 0.0,
        "cosine": False,
        "colour_jitter": 0.0,
        "precision": "float32",
    },
    "recipe": {
        "label": "Recipe: brushwork CNN, 128 px crops of 160 px, 10 views; AdamW cosine; "
        "bfloat16; 90 epochs",
        "model": "brushwork",
        "filters": 32,
        "image_size": 160,
        "crop_size": 128,
        "optimizer": "adamw",
        "learning_rate": 0.002,
        "num_epochs": 90,
        "label_smoothing": 0.1,
        "cosine": True,
        "colour_jitter": 0.1,
        "precision": "auto",
    },
}


def parse_overrides(pairs: list[str]) -> dict:
    """``key=value`` strings as a dictionary, values read as YAML (``60``, ``true``, ``0.1``)."""
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set wants key=value, got {pair!r}")
        overrides[key] = yaml.safe_load(value)
    return overrides


def child(name: str, overrides: dict, holdout: bool, save_model: Path | None) -> None:
    """Train one configuration in this process and print a JSON line of its results."""
    sys.path.insert(0, str(PROJECT_ROOT))
    from sklearn.model_selection import train_test_split

    from utils import evaluation, loading, models, training

    config = CONFIGS[name] | overrides
    data = loading.load_dataset(DATA, config["image_size"], seed=SEED)
    X_train, y_train, X_val, y_val = data.train.X, data.train.y, data.val.X, data.val.y
    if holdout:
        X_train, X_val, y_train, y_val = train_test_split(
            X_train, y_train, test_size=HOLDOUT_SHARE, stratify=y_train, random_state=SEED
        )
    training.set_seed(SEED)
    precision = training.set_precision(config["precision"])
    input_size = config["crop_size"] or config["image_size"]
    network = models.build_model(
        config["model"], input_size, len(data.class_names), config["filters"]
    )
    steps = config["num_epochs"] * training.steps_per_epoch(len(y_train), 32)
    training.compile_model(
        network,
        config["optimizer"],
        config["learning_rate"],
        config["label_smoothing"],
        decay_steps=steps if config["cosine"] else 0,
    )
    result = training.train(
        network,
        X_train,
        y_train,
        None,
        config["num_epochs"],
        32,
        verbose=0,
        crop_size=config["crop_size"],
        colour_jitter=config["colour_jitter"],
        seed=SEED,
    )
    if save_model:
        network.save(save_model)
    y_pred = evaluation.predict_proba(network, X_val).argmax(axis=1)
    metrics = evaluation.summary_metrics(y_val, y_pred, data.class_names)
    train_pred = evaluation.predict_proba(network, X_train).argmax(axis=1)
    print(
        json.dumps(
            {
                "accuracy": metrics["accuracy"],
                "macro_f1": metrics["macro_f1"],
                "train_accuracy": float((train_pred == y_train).mean()),
                "precision": precision,
                "seconds": result.seconds,
                "parameters": network.count_params(),
                "train_images": len(y_train),
                "val_images": len(y_val),
                "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def main() -> None:
    """Train the chosen configurations one after another and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=list(CONFIGS), action="append", help="run only these")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="change a setting"
    )
    parser.add_argument(
        "--holdout",
        action="store_true",
        help=f"for tuning: train on {100 - 100 * HOLDOUT_SHARE:.0f}%% of the training split and "
        f"measure on the other {100 * HOLDOUT_SHARE:.0f}%%; the evaluation split is not read",
    )
    parser.add_argument(
        "--save-model", type=Path, metavar="FILE.keras", help="keep the trained network (one run)"
    )
    parser.add_argument("--child", choices=list(CONFIGS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    overrides = parse_overrides(args.set)
    if args.child:
        child(args.child, overrides, args.holdout, args.save_model)
        return
    if not DATA.is_dir():
        sys.exit(f"Real paintings not found at {DATA}; the benchmark needs ../shared/data.")
    from fresh_process import run_child

    measured_on = (
        "a held-out fifth of the training split" if args.holdout else "the validation split"
    )
    changes = ", ".join(f"{key}={value}" for key, value in overrides.items()) or "none"
    print(
        f"Data: {DATA.name}, measured on {measured_on}; seed {SEED}; batch 32; changes: {changes}\n"
    )
    print(
        "| configuration | parameters | precision | training accuracy | val. accuracy "
        "| val. macro-F1 | training time | peak memory |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    suffix = f" (changed: {changes})" if overrides else ""
    child_args = [f"--set={pair}" for pair in args.set] + ["--holdout"] * args.holdout
    if args.save_model:
        child_args.append(f"--save-model={args.save_model.resolve()}")
    for name in args.only or CONFIGS:
        r = run_child(__file__, name, *child_args)
        print(
            f"| {CONFIGS[name]['label']}{suffix} | {r['parameters']:,} | {r['precision']} | "
            f"{r['train_accuracy']:.1%} | {r['accuracy']:.1%} | {r['macro_f1']:.3f} | "
            f"{r['seconds'] / 60:.1f} min | {r['peak_mib']:,.0f} MiB |",
            flush=True,
        )
    print(f"\n{r['train_images']} training and {r['val_images']} measured images; chance is 10%.")


if __name__ == "__main__":
    main()
