"""Model benchmark: the reference network, the student-style LeNet and the small CNN, trained
on the same split with the same seed, each in a fresh process.

    .venv/bin/python benchmarks/models.py                       # built-in synthetic sample
    .venv/bin/python benchmarks/models.py --data ../shared/data/impressionist-subset

Prints a Markdown table: validation accuracy, macro F1, training time, parameters and the
peak resident memory of the whole process (libraries included). The validation split is
only measured, never used to choose anything.
"""

import argparse
import json
import resource
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# name: (model, optimizer, learning rate), as the notebook's parameters would set them
CONFIGS = {
    "shallow (reference)": ("shallow", "sgd", 0.01),
    "lenet (student-style)": ("lenet", "adam", 0.001),
    "cnn (this project)": ("cnn", "adam", 0.001),
}


def child(config: str, data: str, size: int, epochs: int, seed: int) -> None:
    """Train one configuration in this process and print a JSON line of its results."""
    sys.path.insert(0, str(PROJECT_ROOT))
    from utils import evaluation, loading, models, paths, sample_data, training

    name, optimizer, learning_rate = CONFIGS[config]
    data_dir = paths.resolve(data) if data else sample_data.ensure_sample_data()
    dataset = loading.load_dataset(data_dir, size, seed=seed)
    training.set_seed(seed)
    network = models.build_model(name, size, len(dataset.class_names))
    training.compile_model(network, optimizer, learning_rate)
    result = training.train(
        network, dataset.train.X, dataset.train.y, None, epochs, batch_size=32, verbose=0
    )
    y_pred = evaluation.predict_proba(network, dataset.val.X).argmax(axis=1)
    metrics = evaluation.summary_metrics(dataset.val.y, y_pred, dataset.class_names)
    print(
        json.dumps(
            {
                "accuracy": metrics["accuracy"],
                "macro_f1": metrics["macro_f1"],
                "train_accuracy": result.history["accuracy"][-1],
                "seconds": result.seconds,
                "parameters": network.count_params(),
                "train_images": len(dataset.train.y),
                "val_images": len(dataset.val.y),
                "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def main() -> None:
    """Train every configuration in its own process and print the comparison table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="", help="data folder; empty for the synthetic sample")
    parser.add_argument("--size", type=int, default=64, help="image size in pixels")
    parser.add_argument("--epochs", type=int, default=15, help="training epochs")
    parser.add_argument("--seed", type=int, default=42, help="random seed")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data, args.size, args.epochs, args.seed)
        return
    from fresh_process import run_child

    print(
        f"Data: {args.data or 'built-in synthetic sample'}; {args.size} px; "
        f"{args.epochs} epochs; batch 32; seed {args.seed}\n"
    )
    print(
        "| model | parameters | train acc. | val. accuracy | val. macro-F1 "
        "| training time | peak memory |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for config in CONFIGS:
        r = run_child(
            __file__,
            config,
            "--data",
            args.data,
            "--size",
            str(args.size),
            "--epochs",
            str(args.epochs),
            "--seed",
            str(args.seed),
        )
        print(
            f"| {config} | {r['parameters']:,} | {r['train_accuracy']:.1%} | {r['accuracy']:.1%} | "
            f"{r['macro_f1']:.3f} | {r['seconds']:.0f} s | {r['peak_mib']:,.0f} MiB |",
            flush=True,
        )
    print(f"\n{r['train_images']} training and {r['val_images']} validation images.")


if __name__ == "__main__":
    main()
