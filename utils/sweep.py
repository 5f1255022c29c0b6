"""Run the notebook over a grid of parameters, each run in its own folder, and summarise.

    python -m utils.sweep sweeps/sample_sizes.yaml        # or: make sweep SWEEP=...
    python -m utils.sweep sweeps/sample_sizes.yaml --jobs 2   # or: make sweep JOBS=2

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

Every run is a runner process of its own (``python -m utils.run_notebook``), its output in
``runner.log`` in its folder. With ``--jobs N`` (N > 1), N run at once, each kernel with its
share of the CPU threads (``job_environment``). The summary has the same rows, in the same
order, as one run at a time; metrics may differ in the last digits, because other thread
counts add up floating-point numbers in another order.

The first Ctrl-C or SIGTERM stops the running notebooks (each keeps its completed epochs, for
``make resume``) and starts no new one: runs that never started get no folder, and their
summary row says ``not started``. The sweep then exits with 130 (SIGINT) or 143 (SIGTERM).
"""

import argparse
import contextlib
import csv
import io
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
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
    name = str(raw.get("name") or Path(path).stem)
    try:
        runs.check_run_name(name)  # a folder name under out/sweeps/, never a path
    except ValueError as error:
        raise parameters.ParameterError(f"{path}: the sweep's name: {error}") from None
    return SweepConfig(name, fixed, checked_grid)


def data_label(config: SweepConfig) -> str:
    """Which data the sweep's runs saw, for its chart: the synthetic sample or a folder."""
    values = config.grid.get("data_dir", [config.fixed.get("data_dir")])
    folders = sorted({Path(str(value)).name for value in values if value})
    labels = ["synthetic sample"] if not all(values) else []
    if folders:
        labels.append("real paintings, " + ", ".join(folders))
    return " and ".join(labels)


def combinations(grid: dict[str, list]) -> list[dict[str, object]]:
    """Every combination of the grid's values, in the order the file lists them."""
    return [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]


def run_name_for(sweep_name: str, combination: dict[str, object]) -> str:
    """A readable, filesystem-safe run name such as ``sizes-image_size32-modelcnn``."""
    parts = [sweep_name] + [f"{name}{value}" for name, value in combination.items()]
    return re.sub(r"[^A-Za-z0-9._-]", "_", "-".join(parts))


NOT_STARTED = "not started"


def summary_row(combination: dict[str, object], outcome: run_notebook.RunOutcome | None) -> dict:
    """One summary row: the combination, the status and the run's headline metrics; a run
    that never started (``None``: the sweep was stopped first) says so, with no folder."""
    if outcome is None:
        return {**combination, "status": NOT_STARTED}
    row = {
        **combination,
        "status": "ok" if outcome.ok else "interrupted" if outcome.interrupted else "failed",
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


def job_environment(jobs: int, cpus: int | None = None) -> dict[str, str]:
    """Environment variables that give each of ``jobs`` notebooks its share of the CPUs.

    The runner's kernel inherits them: TensorFlow, OpenMP and OpenCV then start that many
    threads instead of one per core each, so N notebooks do not fight over every core.
    """
    share = str(max(1, (cpus or os.cpu_count() or 1) // jobs))
    names = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")
    return dict.fromkeys((*names, "OPENCV_FOR_THREADS_NUM"), share)


class ChildRunner:
    """Runs prepared run folders in runner processes (``python -m utils.run_notebook``).

    Each run's parameters travel in its folder's request file, exactly as ``make resume``
    reads them, so nothing is re-parsed from text. ``stop`` passes a stop signal on to
    every runner still going, whose kernel then keeps its completed epochs.
    """

    def __init__(self, environment: Mapping[str, str]) -> None:
        self.environment = os.environ | dict(environment)
        self.stopped = threading.Event()
        self._running: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    def __call__(
        self, values: dict[str, object], notebook: Path, declared: Mapping
    ) -> run_notebook.RunOutcome | None:
        """Run one combination in its own runner; the outcome from its exit code and status,
        or None when the sweep was stopped before this run could start (no folder made)."""
        command = [sys.executable, "-m", "utils.run_notebook", "--notebook", str(notebook)]
        with self._lock:  # stop() cannot slip in between the check and the start
            if self.stopped.is_set():
                return None
            run_dir = run_notebook.new_run_dir(values, declared)
            log = open(run_dir / "runner.log", "w", encoding="utf-8")  # noqa: SIM115
            child = subprocess.Popen(
                [*command, "--start", str(run_dir)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.environment,
                cwd=paths.PROJECT_ROOT,
                start_new_session=True,  # a terminal's Ctrl-C reaches it through stop() only
            )
            self._running.add(child)
        print(f"Started {run_dir.name} (log: {paths.display(run_dir / 'runner.log')})")
        with log:
            code = child.wait()
            with self._lock:
                self._running.discard(child)
        if code == 0:
            return run_notebook.RunOutcome(run_dir)
        status = runs.read_status(run_dir)
        if status["status"] == runs.INTERRUPTED or code == run_notebook.INTERRUPTED_EXIT_CODE:
            return run_notebook.RunOutcome(run_dir, interrupted=True)
        error = status.get("error") or f"the runner exited with code {code}"
        cell = f"cell {status['cell']}: " if status.get("cell") is not None else ""
        return run_notebook.RunOutcome(run_dir, f"{cell}{error} (log: {run_dir / 'runner.log'})")

    def stop(self) -> None:
        """Start no new run, and ask every running runner to stop its kernel."""
        with self._lock:
            self.stopped.set()
            for child in self._running:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signal.SIGTERM)


@contextlib.contextmanager
def stop_signals_stop(runner: ChildRunner) -> Iterator[list[int]]:
    """While a sweep runs, Ctrl-C and SIGTERM stop it cleanly (``runner.stop``); yields the
    signals received, the first of which sets the sweep's exit status."""
    received: list[int] = []

    def stop(signum: int, frame) -> None:
        if not received:
            print(f"\n{signal.Signals(signum).name}: stopping the sweep...", file=sys.stderr)
        received.append(signum)
        runner.stop()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@dataclass(frozen=True)
class SweepResult:
    """Where a sweep's summary went, and the signal that stopped it (None: it ran out)."""

    summary_dir: Path
    stopped_by: int | None = None


def run_sweep(
    config_path: Path, notebook: Path = run_notebook.NOTEBOOK, jobs: int = 1
) -> SweepResult:
    """Run every combination of the sweep, ``jobs`` at a time, each in its own runner."""
    declared = parameters.declared(notebook)
    config = load_config(config_path, declared)
    try:
        summary_dir = runs.create_run_dir(config.name, paths.out_root() / "sweeps")
    except OSError as error:
        raise parameters.ParameterError(
            f"Cannot create the sweep's folder under {paths.display(paths.out_root())}: "
            f"{error.strerror or error}. Point CNN_ARTISTS_OUT at a writable folder."
        ) from None
    swept = list(config.grid)
    todo = combinations(config.grid)
    rows: dict[int, dict] = {}
    lock = threading.Lock()
    runner = ChildRunner(job_environment(jobs))

    def run_one(index: int) -> None:
        combination = todo[index]
        values = {**config.fixed, **combination, "run_name": run_name_for(config.name, combination)}
        try:
            outcome = runner(values, notebook, declared)
        except Exception as error:  # one broken run must not end the sweep
            outcome = run_notebook.RunOutcome(
                paths.out_root() / values["run_name"], f"{type(error).__name__}: {error}"
            )
        with lock:
            rows[index] = summary_row(combination, outcome)
            write_summary(summary_dir / "summary.csv", [rows[i] for i in sorted(rows)], swept)

    with stop_signals_stop(runner) as received, ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in [pool.submit(run_one, index) for index in range(len(todo))]:
            future.result()
    ordered = [rows[i] for i in sorted(rows)]
    fig = plots.sweep_summary(ordered, swept[0], swept[1] if len(swept) > 1 else None)
    runs.save_figure(plots.label_data(fig, data_label(config)), summary_dir, "summary")
    return SweepResult(summary_dir, received[0] if received else None)


def main(argv: list[str] | None = None) -> int:
    """Command line: run a sweep file and print where its summary is."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_file", type=Path, help="YAML file describing the sweep")
    parser.add_argument(
        "--jobs", type=int, default=1, help="notebooks to run at once, sharing the CPU threads"
    )
    parser.add_argument(
        "--notebook", type=Path, default=run_notebook.NOTEBOOK, help="notebook to run"
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    try:
        result = run_sweep(args.sweep_file.expanduser().resolve(), args.notebook, args.jobs)
    except parameters.ParameterError as error:
        print(error, file=sys.stderr)
        return 2
    where = f"{paths.display(result.summary_dir)}/summary.csv and summary.png"
    if result.stopped_by is not None:
        print(f"\nSweep interrupted; summary so far: {where}", file=sys.stderr)
        print((result.summary_dir / "summary.csv").read_text(), file=sys.stderr)
        return 128 + result.stopped_by
    print(f"\nSweep summary: {where}")
    print((result.summary_dir / "summary.csv").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
