"""Run the notebook headlessly with papermill, into a run folder of its own.

Usage (``make run PARAMS="..."`` passes its arguments here)::

    python -m utils.run_notebook                              # built-in sample, defaults
    python -m utils.run_notebook -p num_epochs 20 -p image_size 128
    python -m utils.run_notebook -f params/kaggle.yaml -p run_name kaggle-try

``-p NAME VALUE`` and ``-f FILE.yaml`` work as in papermill; later ones win, and ``-p``
beats ``-f``. Unknown parameter names are refused, so a typo cannot silently run
the defaults. The executed notebook is saved as ``out/<run_name>/notebook.ipynb``
beside everything the run writes; an existing run folder is never reused.
"""

import argparse
import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import papermill
import yaml

from utils import paths, runs

NOTEBOOK = paths.PROJECT_ROOT / "notebooks" / "cnn_artists.ipynb"
KERNEL_NAME = "cnn-artists"


_PAPERMILL_CHATTER = ("Executing", "Ending Cell", "Input Notebook", "Output Notebook", "<Figure")


def _only_cell_output(record: logging.LogRecord) -> bool:
    """Let through what the notebook prints (epoch lines, summaries), not papermill's own steps."""
    return not str(record.msg).startswith(_PAPERMILL_CHATTER)


def parse_value(text: str) -> object:
    """Read a command-line value as papermill does: bool, None, int, float, else string."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def collect_parameters(
    files: list[str], pairs: list[tuple[str, str]], defaults: dict[str, object]
) -> dict[str, object]:
    """Merge YAML files then ``-p`` pairs, refusing names the notebook does not declare."""
    parameters: dict[str, object] = {}
    for file in files:
        loaded = yaml.safe_load(paths.resolve(file).read_text()) or {}
        if not isinstance(loaded, dict):
            raise SystemExit(f"{file} must hold a mapping of parameter names to values.")
        parameters.update(loaded)
    parameters.update({name: parse_value(value) for name, value in pairs})
    refuse_unknown(parameters, defaults)
    return parameters


def refuse_unknown(names: Iterable[str], defaults: dict[str, object]) -> None:
    """Stop with a clear message if any name is not a parameter the notebook declares."""
    unknown = sorted(set(names) - set(defaults))
    if unknown:
        raise SystemExit(
            f"Unknown parameter(s): {', '.join(unknown)}. "
            f"The notebook declares: {', '.join(defaults)}."
        )


def notebook_defaults(notebook: Path) -> dict[str, object]:
    """The notebook's parameters and their default values, read from its parameters cell."""
    declared = papermill.inspect_notebook(str(notebook))
    return {name: yaml.safe_load(spec["default"]) for name, spec in declared.items()}


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
    parameters: dict[str, object], notebook: Path, defaults: dict[str, object]
) -> RunOutcome:
    """Reserve a run folder, execute ``notebook`` with ``parameters`` into it, report the outcome.

    ``parameters`` must already be checked against ``defaults``, the notebook's declared
    parameters (``notebook_defaults``, read once by the caller).
    A failed run keeps its folder and executed notebook, which shows the error; its
    ``status.json`` names the cell (the notebook writes it, or this function when the
    kernel itself died).
    """
    settings = {**defaults, **parameters}
    run_name = settings["run_name"] or runs.default_run_name(
        settings["model"], settings["image_size"]
    )
    try:
        run_dir = runs.reserve_run_dir(run_name)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    output = run_dir / "notebook.ipynb"
    print(f"Running {paths.display(notebook)} -> {paths.display(output)}", flush=True)
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters={**parameters, "run_name": run_dir.name},
            kernel_name=KERNEL_NAME,
            cwd=str(notebook.parent),
            log_output=True,
            progress_bar=False,
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
    except papermill.PapermillExecutionError as error:
        return RunOutcome(run_dir, f"cell {error.exec_count}: {error.ename}: {error.evalue}")
    except Exception as error:  # the kernel died or timed out: no cell reported an error
        message = f"{type(error).__name__}: {error}".strip()
        if runs.read_status(run_dir)["status"] in (runs.RUNNING, "unknown"):
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
    defaults = notebook_defaults(args.notebook)
    parameters = collect_parameters(args.parameters_file, args.parameters, defaults)
    outcome = execute(parameters, args.notebook, defaults)
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
