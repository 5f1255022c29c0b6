"""Model benchmark: the reference network, the student-style LeNet and the notebook's default
CNN, each trained by the notebook itself on the same data, size, epochs and seed.

    .venv/bin/python benchmarks/models.py                       # built-in synthetic sample
    .venv/bin/python benchmarks/models.py --data ../shared/data/impressionist-subset

The reference and LeNet take their settings from ``params/reference.yaml`` and
``params/lenet.yaml``; the CNN runs with the notebook's defaults. ``--size`` and
``--epochs`` then apply to all three, so only the network and its optimizer differ.
Prints a Markdown table from each run's ``metrics.json``, with the command of each row.
The validation split is only measured, never used to choose anything.
"""

import argparse

from notebook_runs import benchmark_out_dir, run

from utils import paths

CONFIGS = {
    "shallow (reference)": ["params/reference.yaml"],
    "lenet (student-style)": ["params/lenet.yaml"],
    "cnn (the notebook's default)": [],
}


def main() -> None:
    """Train every configuration through the notebook and print the comparison table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="", help="data folder; empty for the synthetic sample")
    parser.add_argument("--size", type=int, default=64, help="image size in pixels")
    parser.add_argument("--epochs", type=int, default=15, help="training epochs")
    parser.add_argument("--seed", type=int, default=42, help="random seed")
    args = parser.parse_args()
    settings = {"image_size": args.size, "num_epochs": args.epochs, "seed": args.seed}
    if args.data:
        settings["data_dir"] = args.data
    out_dir = benchmark_out_dir("models")
    print(
        f"Data: {args.data or 'built-in synthetic sample'}; {args.size} px; "
        f"{args.epochs} epochs; seed {args.seed}; runs in {paths.display(out_dir)}\n"
    )
    print(
        "| model | parameters | train acc. (last epoch) | val. accuracy | val. macro-F1 "
        "| training time | peak memory | command |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for label, params_files in CONFIGS.items():
        done = run(params_files, settings, label.split()[0], out_dir)
        metrics = done.metrics
        print(
            f"| {label} | {metrics['model_parameters']:,} "
            f"| {metrics['final_epoch']['accuracy']:.1%} "
            f"| {metrics['accuracy']:.1%} | {metrics['macro_f1']:.3f} "
            f"| {done.training_seconds:.0f} s | {metrics['peak_memory_mib']:,.0f} MiB "
            f"| `{done.command}` |",
            flush=True,
        )
    images = metrics["images"]
    print(f"\n{images['training']} training and {images['validation']} validation images.")


if __name__ == "__main__":
    main()
