"""Fit a recipe's temperature on a fold of the training split, never on the split it is scored on.

    .venv/bin/python benchmarks/calibrate.py params/transfer.yaml
    .venv/bin/python benchmarks/calibrate.py params/transfer-quick.yaml --data DIR --fold 5

The recipe runs through the notebook as ``make run`` runs it, with ``holdout_fold`` set: it
trains on the other folds of the training split and is evaluated on this one (the validation
split, on which the recipe's results are scored, is not read), at temperature 1. The fold's
probabilities (``predictions.csv``: the mean of ten views for a recipe trained on crops, made
as the recipe's own runs make theirs) fit the temperature (``calibration.fit_temperature``).

The result goes to ``benchmarks/results/calibration.json``: the temperature, the fold, the
data, the calibration error and the mean log-loss on the fold before and after, the command,
the commit and the machine. The script prints the line to put in the params file and never
edits one. Tuning runs read fold 1 (``accuracy.py --holdout-fold 1``); the temperature is
fitted on fold 5, so that no tuning score is read on the paintings that fitted it. Refit after
any change that moves the recipe's model.
"""

import argparse
import json
import os
import sys
from pathlib import Path

from notebook_runs import benchmark_out_dir, run

from utils import calibration, evaluation, paths, published, runs

DATA = paths.PROJECT_ROOT.parent / "shared" / "data" / "impressionist-subset"
RESULTS = paths.PROJECT_ROOT / "benchmarks" / "results" / "calibration.json"
DEFAULT_FOLD, DEFAULT_FOLDS = 5, 5


def fitted(run_dir: Path) -> dict:
    """The temperature fitted on a finished run's evaluation paintings, which must be a fold of
    its training split, with the calibration error and log-loss there before and after."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    if not metrics["parameters"]["holdout_fold"]:
        sys.exit(
            f"{run_dir} was scored on its validation split: a temperature is never fitted there."
        )
    if metrics["parameters"]["temperature"] != 1:
        sys.exit(f"{run_dir} already applied a temperature; fit on probabilities as given.")
    _, y_true, proba = evaluation.read_predictions(run_dir / "predictions.csv")
    temperature = calibration.fit_temperature(y_true, proba)
    scaled = calibration.apply_temperature(proba, temperature)
    return {
        "temperature": round(temperature, 3),
        "paintings": len(y_true),
        "expected_calibration_error": {
            "before": evaluation.reliability(y_true, proba)["expected_calibration_error"],
            "after": evaluation.reliability(y_true, scaled)["expected_calibration_error"],
        },
        "log_loss": {
            "before": calibration.negative_log_likelihood(y_true, proba, 1.0),
            "after": calibration.negative_log_likelihood(y_true, proba, temperature),
        },
        "accuracy": metrics["accuracy"],
        "evaluated_on": metrics["evaluated_on"],
    }


def main() -> None:
    """Run the recipe on the fold, fit and record its temperature, and print the line to add."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("params_file", help="the recipe, e.g. params/transfer.yaml")
    parser.add_argument("--data", type=Path, default=DATA, help="a Kaggle-layout folder")
    parser.add_argument("--fold", type=int, default=DEFAULT_FOLD, help="the fold to fit on")
    parser.add_argument("--folds", type=int, default=DEFAULT_FOLDS, help="folds in all")
    args = parser.parse_args()
    if not 1 <= args.fold <= args.folds:
        sys.exit(f"--fold must lie between 1 and --folds ({args.folds}).")
    recipe = Path(args.params_file).stem
    settings = {
        "data_dir": os.path.relpath(args.data.resolve(), paths.PROJECT_ROOT),
        "holdout_fold": args.fold,
        "holdout_folds": args.folds,
        "temperature": 1.0,
    }
    done = run([args.params_file], settings, recipe, benchmark_out_dir("calibrate"))
    row = fitted(done.run_dir) | {
        "params": args.params_file,
        "holdout_fold": args.fold,
        "holdout_folds": args.folds,
        "data": settings["data_dir"],
        "command": done.command,
        "commit": published.commit(),
        "measured": runs.read_status(done.run_dir)["time"][:10],
        "machine": published.machine(),
    }
    recorded = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    runs.write_json(RESULTS, recorded | {recipe: row})
    errors = row["expected_calibration_error"]
    print(
        f"{recipe}: temperature {row['temperature']} fitted on {row['evaluated_on']} "
        f"({row['paintings']} paintings); calibration error there {errors['before']:.3f} -> "
        f"{errors['after']:.3f}. Recorded in {paths.display(RESULTS)}.\n"
        f"Put this line in {args.params_file}:\n"
        f"temperature: {row['temperature']}"
    )


if __name__ == "__main__":
    main()
