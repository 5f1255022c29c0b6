"""Run the notebook headlessly with papermill, into a run folder of its own.

Usage (``make run PARAMS="..."`` passes its arguments here)::

    python -m utils.run_notebook                              # built-in sample, defaults
    python -m utils.run_notebook -p num_epochs 20 -p image_size 128
    python -m utils.run_notebook -f params/kaggle.yaml -p run_name kaggle-try

``-p NAME VALUE`` and ``-f FILE.yaml`` work as in papermill; later ones win, and ``-p``
beats ``-f``. Every value is checked against the type the notebook's parameters cell
declares (``utils.parameters``) before papermill writes it into the notebook, and
unknown names are refused, so a typo cannot silently run the defaults and a
parameters file cannot smuggle in code. The executed notebook is saved as
``out/<run_name>/notebook.ipynb`` beside everything the run writes; an existing run
folder is never reused.
"""

import argparse
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import papermill

from utils import parameters, paths, runs

NOTEBOOK = paths.PROJECT_ROOT / "notebooks" / "cnn_artists.ipynb"
KERNEL_NAME = "cnn-artists"


_PAPERMILL_CHATTER = ("Executing", "Ending Cell", "Input Notebook", "Output Notebook", "<Figure")


def _only_cell_output(record: logging.LogRecord) -> bool:
    """Let through what the notebook prints (epoch lines, summaries), not papermill's own steps."""
    return not str(record.msg).startswith(_PAPERMILL_CHATTER)


@dataclass(frozen=True)
class RunOutcome:
    """Where a run went and, if it failed, why."""

    run_dir: Path
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when every cell ran."""
        return self.error is None


def execute(
    values: dict[str, object], notebook: Path, declared: Mapping[str, parameters.Declared]
) -> RunOutcome:
    """Reserve a run folder, execute ``notebook`` with ``values`` into it, report the outcome.

    ``values`` must already be checked against ``declared``, the notebook's declared
    parameters (``parameters.declared``, read once by the caller).
    A failed run keeps its folder and executed notebook, which shows the error; its
    ``status.json`` names the cell (the notebook writes it, or this function when the
    kernel itself died).
    """
    settings = {name: d.default for name, d in declared.items()} | values
    run_name = settings["run_name"] or runs.default_run_name(
        settings["model"], settings["image_size"]
    )
    try:
        run_dir = runs.reserve_run_dir(run_name)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    except OSError as error:
        raise SystemExit(
            f"Cannot create a run folder under {paths.out_root()}: {error.strerror or error}. "
            "Point CNN_ARTISTS_OUT at a writable folder."
        ) from None
    output = run_dir / "notebook.ipynb"
    print(f"Running {paths.display(notebook)} -> {paths.display(output)}", flush=True)
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters={**values, "run_name": run_dir.name},
            kernel_name=KERNEL_NAME,
            cwd=str(notebook.parent),
            log_output=True,
            progress_bar=False,
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
    except papermill.PapermillExecutionError as error:
        message = f"{error.ename}: {error.evalue}"
        if runs.read_status(run_dir)["status"] != runs.FAILED:  # it failed before tracking began
            runs.mark_failed(run_dir, error.exec_count, message, error.source)
        return RunOutcome(run_dir, f"cell {error.exec_count}: {message}")
    except Exception as error:  # the kernel died or timed out: no cell reported an error
        message = f"{type(error).__name__}: {error}".strip()
        if runs.read_status(run_dir)["status"] != runs.FAILED:
            runs.mark_failed(run_dir, None, message)
        return RunOutcome(run_dir, message)
    finally:
        (run_dir / runs.RESERVED_MARKER).unlink(missing_ok=True)
    return RunOutcome(run_dir)


def show_cell_output() -> None:
    """Log what the notebook prints to the terminal, without papermill's own chatter."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("papermill").addFilter(_only_cell_output)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, execute the notebook into its own run folder, say where it went."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "-p",
        "--parameters",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="set one parameter",
    )
    parser.add_argument(
        "-f",
        "--parameters_file",
        action="append",
        default=[],
        metavar="FILE",
        help="YAML file of parameters",
    )
    parser.add_argument("--notebook", type=Path, default=NOTEBOOK, help="notebook to run")
    args = parser.parse_args(argv)
    show_cell_output()
    declared = parameters.declared(args.notebook)
    try:
        values = parameters.collect(args.parameters_file, args.parameters, declared)
    except parameters.ParameterError as error:
        print(error, file=sys.stderr)
        return 2
    outcome = execute(values, args.notebook, declared)
    if not outcome.ok:
        print(f"\nThe run failed in {outcome.error}", file=sys.stderr)
        print(
            f"The notebook with the error is at {paths.display(outcome.run_dir)}/notebook.ipynb",
            file=sys.stderr,
        )
        return 1
    print(f"\nDone. Results are in {paths.display(outcome.run_dir)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
