"""Accuracy benchmark on real paintings: the reference, the student-style LeNet, this
project's recipe, its quick version for class, and the pretrained network fine-tuned or with
a head on its frozen features, each trained by the notebook itself with its file from
``params/``.

    .venv/bin/python benchmarks/accuracy.py                      # all four, seed 42
    .venv/bin/python benchmarks/accuracy.py --only recipe --seeds 0 1 2
    .venv/bin/python benchmarks/accuracy.py --only recipe --holdout-fold 1 --set num_epochs=60

Every row is one or more ``make run`` commands (printed beside it) on
``../shared/data/impressionist-subset``: training on ``training/training`` (971 images),
evaluation on ``validation/validation`` (259 images), which is only measured after
training. For tuning, ``--holdout-fold K`` evaluates on fold K of five of the training
split instead, and the evaluation split is not read. ``--set NAME=VALUE`` changes one
notebook parameter. Figures come from each run's ``metrics.json``: accuracy, macro-F1,
the ``fit`` time (per-epoch validation included) and the kernel's peak memory.

Measured on the validation split with no ``--set``, each configuration is also recorded in
``benchmarks/results/real_paintings.json`` (with the machine, the date and the commit),
which the notebook and the README show. Tuning runs are printed only. ``--record-from
out/benchmarks/accuracy-<time> --commit <sha>`` records the finished runs of an earlier
invocation (made at that commit) without training again.
"""

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import yaml
from notebook_runs import NotebookRun, benchmark_out_dir, make_command, run

from utils import paths, published, runs
from utils.published import spread

DATA = paths.PROJECT_ROOT.parent / "shared" / "data" / "impressionist-subset"
CONFIGS = {
    "reference": ("Reference: one conv layer, Flatten, Dense; SGD 0.01", ["params/reference.yaml"]),
    "lenet": ("Student LeNet: conv blocks 32/64, dense 128, dropout; Adam", ["params/lenet.yaml"]),
    "recipe": ("Recipe: brushwork CNN on crops, 10 views, AdamW cosine", ["params/kaggle.yaml"]),
    "quick": ("Quick recipe: 48 px crops, 18,000 images", ["params/kaggle-quick.yaml"]),
    "transfer": (
        "Transfer: EfficientNet-Lite0 (ImageNet), top 8 blocks fine-tuned, 10 views",
        ["params/transfer.yaml"],
    ),
    "transfer-quick": (
        "Transfer, quick: frozen EfficientNet-Lite0 features (last and block 12), new head",
        ["params/transfer-quick.yaml"],
    ),
}

# Where each configuration's settings were chosen; True flags the split its score is read on.
CHOSEN_ON = {
    "reference": ("not tuned: the assignment's settings", False),
    "lenet": ("not tuned: a typical student's network", False),
    "recipe": (
        "partly this split (epochs and image size of earlier recipes); its last change on a "
        "held-out fifth of training",
        True,
    ),
    "quick": ("training fold 1", False),
    "transfer": ("training fold 1", False),
    "transfer-quick": ("training fold 1", False),
}


def parse_settings(pairs: list[str]) -> dict[str, object]:
    """``NAME=VALUE`` strings as notebook parameters, values read as YAML (``60``, ``true``)."""
    settings = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set wants NAME=VALUE, got {pair!r}")
        settings[name] = yaml.safe_load(value)
    return settings


def record(name: str, done: list[NotebookRun], seeds: list[int], commit: str) -> None:
    """Keep configuration ``name``'s result in ``benchmarks/results/real_paintings.json``."""
    first = done[0].metrics
    images = first["images"]
    published.record(
        name,
        {
            "label": CONFIGS[name][0],
            "seeds": seeds,
            "accuracy": [r.metrics["accuracy"] for r in done],
            "macro_f1": [r.metrics["macro_f1"] for r in done],
            "expected_calibration_error": [r.metrics["expected_calibration_error"] for r in done],
            "training_minutes": statistics.mean(r.training_seconds for r in done) / 60,
            "images_seen": first["epochs"] * images["training"],
            "chosen_on": CHOSEN_ON[name][0],
            "chosen_on_scored_split": CHOSEN_ON[name][1],
            "peak_memory_mib": max(r.metrics["peak_memory_mib"] for r in done),
            "parameters": first["model_parameters"],
            "precision": first["parameters"]["precision"],
            "machine": published.machine(),
            "measured": max(runs.read_status(r.run_dir)["time"][:10] for r in done),
            "commit": commit,
            "command": done[0].command,
        },
        f"{DATA.name}: trained on {images['training']} real paintings of its training split, "
        f"measured on the {images['validation']} of its validation split (10 artists; "
        "guessing gives 10%)",
    )


def finished_runs(folder: Path, name: str) -> tuple[list[NotebookRun], list[int]]:
    """The finished ``<name>-seed<N>`` runs in a benchmark folder, and their seeds."""
    done, seeds = [], []
    for run_dir in sorted(folder.glob(f"{name}-seed*")):
        if runs.read_status(run_dir).get("status") != runs.FINISHED:
            print(f"Passing over {run_dir}: it did not finish.")
            continue
        metrics = json.loads((run_dir / "metrics.json").read_text())
        if metrics["parameters"]["holdout_fold"]:
            sys.exit(f"{run_dir} was measured on a training fold; only validation runs are kept.")
        seed = metrics["parameters"]["seed"]
        settings = {"data_dir": metrics["parameters"]["data_dir"], "seed": seed}
        done.append(NotebookRun(make_command(CONFIGS[name][1], settings), run_dir, metrics))
        seeds.append(seed)
    return done, seeds


def main() -> None:
    """Run the chosen configurations and seeds one after another and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=list(CONFIGS), action="append", help="run only these")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42], help="seeds to run")
    parser.add_argument("--holdout-fold", type=int, default=0, help="tune on this training fold")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument(
        "--record-from",
        type=Path,
        metavar="FOLDER",
        help="record the finished runs of an earlier benchmark folder without training again",
    )
    parser.add_argument("--commit", help="with --record-from: the commit those runs measured")
    args = parser.parse_args()
    if args.record_from:
        if not args.commit:
            sys.exit("--record-from needs --commit: the commit the runs were measured with.")
        for name in args.only or CONFIGS:
            done, seeds = finished_runs(args.record_from, name)
            if done:
                record(name, done, seeds, args.commit)
                print(f"Recorded {name}: {len(done)} run(s) from {args.record_from}")
        return
    if not DATA.is_dir():
        sys.exit(f"Real paintings not found at {DATA}; the benchmark needs ../shared/data.")
    settings = {"data_dir": os.path.relpath(DATA, paths.PROJECT_ROOT)}
    if args.holdout_fold:
        settings["holdout_fold"] = args.holdout_fold
    settings |= parse_settings(args.set)
    out_dir = benchmark_out_dir("accuracy")
    recording = not args.holdout_fold and not args.set
    commit = published.commit()
    measured_on = (
        f"fold {args.holdout_fold} of 5 of the training split"
        if args.holdout_fold
        else "the validation split"
    )
    print(f"Data: {DATA.name}, measured on {measured_on}; {os.cpu_count()} CPU cores")
    print(f"Runs: {paths.display(out_dir)}\n")
    print(
        "| configuration | seeds | parameters | precision | training accuracy (last epoch) "
        "| accuracy | macro-F1 | training time | peak memory | command |"
    )
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---|")
    for name in args.only or CONFIGS:
        label, params_files = CONFIGS[name]
        done = [
            run(params_files, settings | {"seed": seed}, f"{name}-seed{seed}", out_dir)
            for seed in args.seeds
        ]
        first = done[0].metrics
        minutes = statistics.mean(r.training_seconds for r in done) / 60
        peak = max(r.metrics["peak_memory_mib"] for r in done)
        print(
            f"| {label} | {', '.join(map(str, args.seeds))} | {first['model_parameters']:,} "
            f"| {first['parameters']['precision']} "
            f"| {spread([r.metrics['final_epoch']['accuracy'] for r in done])} "
            f"| {spread([r.metrics['accuracy'] for r in done])} "
            f"| {spread([r.metrics['macro_f1'] for r in done])} | {minutes:.1f} min "
            f"| {peak:,.0f} MiB | `{done[0].command}` |",
            flush=True,
        )
        if recording:
            record(name, done, args.seeds, commit)
    images = first["images"]
    print(f"\n{images['training']} training and {images['validation']} measured images.")


if __name__ == "__main__":
    main()
