"""Run the notebook over a grid of parameters, each run in its own folder, and summarise.

    python -m utils.sweep sweeps/sample_sizes.yaml        # or: make sweep SWEEP=...

A sweep file names the sweep, optional fixed parameters, and the grid::

    name: sample-sizes
    parameters_files: [params/reference.yaml]   # optional, applied first
    parameters: {num_epochs: 10}             # optional, fixed for every run
    grid:                                    # every combination runs once
      image_size: [32, 64]
      model: [shallow, cnn]

The summary goes to ``out/sweeps/<name>/``: ``summary.csv`` (one row per run, written
after every run) and ``summary.png`` (accuracy and training time against the first swept
parameter, one line per value of the second). A failed run is recorded as failed and
the sweep goes on.
"""

import argparse
import csv
import io
import itertools
import json
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from utils import parameters, paths, plots, run_notebook, runs

SUMMARY_COLUMNS = ("status", "accuracy", "macro_f1", "training_seconds", "run_dir", "error")


@dataclass(frozen=True)
class SweepConfig:
    """A sweep: its name, the parameters every run shares, and the grid to cross."""

    name: str
    fixed: dict[str, object]
    grid: dict[str, list]


def load_config(path: Path, declared: Mapping[str, parameters.Declared]) -> SweepConfig:
    """Read a sweep file and check every value in it against the notebook's declarations.

    Raises ``parameters.ParameterError`` with one line that names the problem.
    """
    raw = parameters.read_yaml(path)
    if not isinstance(raw, dict):
        raise parameters.ParameterError(f"{path} must hold a mapping with a 'grid'.")
    grid = raw.get("grid")
    if (
        not isinstance(grid, dict)
        or not grid
        or not all(isinstance(values, list) and values for values in grid.values())
    ):
        raise parameters.ParameterError(
            f"{path}: 'grid' must map parameter names to non-empty lists."
        )
    files = raw.get("parameters_files") or []
    fixed_values = raw.get("parameters") or {}
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise parameters.ParameterError(f"{path}: 'parameters_files' must be a list of paths.")
    if not isinstance(fixed_values, dict):
        raise parameters.ParameterError(f"{path}: 'parameters' must map names to values.")
    try:
        fixed = parameters.collect(files, [], declared)
        fixed.update(parameters.check_all(fixed_values, declared))
        parameters.refuse_unknown(grid, declared)
        checked_grid = {
            name: [parameters.check(name, value, declared[name]) for value in values]
            for name, values in grid.items()
        }
    except parameters.ParameterError as error:
        raise parameters.ParameterError(f"{path}: {error}") from None
    name = raw.get("name")
    return SweepConfig(str(name) if name else Path(path).stem, fixed, checked_grid)


def combinations(grid: dict[str, list]) -> list[dict[str, object]]:
    """Every combination of the grid's values, in the order the file lists them."""
    return [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]


def run_name_for(sweep_name: str, combination: dict[str, object]) -> str:
    """A readable, filesystem-safe run name such as ``sizes-image_size32-modelcnn``."""
    parts = [sweep_name] + [f"{name}{value}" for name, value in combination.items()]
    return re.sub(r"[^A-Za-z0-9._-]", "_", "-".join(parts))


def summary_row(combination: dict[str, object], outcome: run_notebook.RunOutcome) -> dict:
    """One summary row: the combination, the status and the run's headline metrics."""
    row = {
        **combination,
        "status": "ok" if outcome.ok else "failed",
        "run_dir": paths.display(outcome.run_dir),
        "error": outcome.error or "",
    }
    metrics_path = outcome.run_dir / "metrics.json"
    if outcome.ok and metrics_path.is_file():
        metrics = json.loads(metrics_path.read_text())
        row |= {
            "accuracy": metrics["accuracy"],
            "macro_f1": metrics["macro_f1"],
            "training_seconds": metrics["seconds"]["training"],
        }
    return row


def write_summary(path: Path, rows: list[dict], swept: list[str]) -> Path:
    """Write the summary rows as CSV, atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, [*swept, *SUMMARY_COLUMNS], restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return runs.write_text(path, buffer.getvalue())


def run_sweep(
    config_path: Path,
    notebook: Path = run_notebook.NOTEBOOK,
    execute: Callable[..., run_notebook.RunOutcome] = run_notebook.execute,
) -> Path:
    """Run every combination of the sweep; return the folder holding its summary."""
    declared = parameters.declared(notebook)
    config = load_config(config_path, declared)
    summary_dir = runs.create_run_dir(config.name, paths.out_root() / "sweeps")
    swept = list(config.grid)
    rows = []
    for combination in combinations(config.grid):
        values = {
            **config.fixed,
            **combination,
            "run_name": run_name_for(config.name, combination),
        }
        try:
            outcome = execute(values, notebook, declared)
        except Exception as error:  # one broken run must not end the sweep
            outcome = run_notebook.RunOutcome(
                paths.out_root() / values["run_name"], f"{type(error).__name__}: {error}"
            )
        rows.append(summary_row(combination, outcome))
        write_summary(summary_dir / "summary.csv", rows, swept)
    fig = plots.sweep_summary(rows, swept[0], swept[1] if len(swept) > 1 else None)
    runs.save_figure(fig, summary_dir, "summary")
    return summary_dir


def main(argv: list[str] | None = None) -> int:
    """Command line: run a sweep file and print where its summary is."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_file", type=Path, help="YAML file describing the sweep")
    args = parser.parse_args(argv)
    run_notebook.show_cell_output()
    try:
        summary_dir = run_sweep(args.sweep_file.expanduser().resolve())
    except parameters.ParameterError as error:
        print(error, file=sys.stderr)
        return 2
    print(f"\nSweep summary: {paths.display(summary_dir)}/summary.csv and summary.png")
    print((summary_dir / "summary.csv").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
