"""One table of every run in a folder: what a teacher grades a class's runs from.

Usage (``make runs [OUT=folder]`` passes its argument here)::

    python -m utils.run_table            # every run in out/
    python -m utils.run_table out/week3  # or in another folder

Each row gives a run's name, its status, the parameters it changed from the notebook's
defaults, accuracy, macro-F1 and minutes of training. Only ``metrics.json`` and
``status.json`` are read, never a model or a notebook, so the table is quick to build
over a whole class. Folders that look like runs but cannot be read are named with the
reason. The table is written as ``runs.csv`` and ``runs.md`` in the folder, and printed.
"""

import argparse
import csv
import io
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from utils import parameters, paths, run_notebook, runs

COLUMNS = ("run", "status", "changed", "accuracy", "macro_f1", "training_minutes", "evaluated_on")
# Set by make run itself, so they differ from the defaults in every run and say nothing.
BOOKKEEPING = frozenset({"run_name", "run_folder", "verbose"})
# Any of these files makes a folder a run (sweep summaries and caches have none of them).
RUN_MARKERS = (runs.STATUS_FILE, "metrics.json", run_notebook.REQUEST_FILE, "notebook.ipynb")
TABLE_FILES = ("runs.csv", "runs.md")


@dataclass
class RunTable:
    """The readable runs as rows, and the unreadable ones with the reason for each."""

    rows: list[dict] = field(default_factory=list)
    unreadable: list[tuple[Path, str]] = field(default_factory=list)


def is_run_folder(folder: Path) -> bool:
    """True if ``folder`` holds any file that ``make run`` writes into a run folder."""
    return folder.is_dir() and any((folder / name).is_file() for name in RUN_MARKERS)


def _read_json(path: Path) -> dict:
    """A JSON object from ``path``; ``ValueError`` naming the file and what is wrong."""
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"{path.name}: {error.strerror or error}") from None
    except ValueError:
        raise ValueError(f"{path.name} is not valid JSON") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"{path.name} does not hold a JSON object")
    return loaded


def changed_parameters(used: Mapping[str, object], defaults: Mapping[str, object]) -> str:
    """``name=value`` for each parameter that differs from its default, in the defaults' order."""
    changed = [
        f"{name}={used[name]}"
        for name in defaults
        if name not in BOOKKEEPING and name in used and used[name] != defaults[name]
    ]
    changed += [f"{name}={value}" for name, value in used.items() if name not in defaults]
    return ", ".join(changed)


def read_run(folder: Path, defaults: Mapping[str, object]) -> dict:
    """One row for the run in ``folder``; ``ValueError`` saying why when it cannot be read."""
    status_path, metrics_path = folder / runs.STATUS_FILE, folder / "metrics.json"
    if not status_path.is_file():
        raise ValueError(f"no {runs.STATUS_FILE}")
    status_record = _read_json(status_path)
    status = status_record.get("status")
    if not isinstance(status, str):
        raise ValueError(f"{runs.STATUS_FILE} has no status")
    if status == runs.RUNNING and not runs.run_is_live(folder):
        status = "died (its process is gone)"
    row = dict.fromkeys(COLUMNS, "") | {"run": folder.name, "status": status}
    if not metrics_path.is_file():
        if status == runs.FINISHED:
            raise ValueError("finished, but metrics.json is missing")
        return row
    metrics = _read_json(metrics_path)
    try:
        used = metrics["parameters"]
        row |= {
            "changed": changed_parameters(used, defaults),
            "accuracy": float(metrics["accuracy"]),
            "macro_f1": float(metrics["macro_f1"]),
            "training_minutes": float(metrics["seconds"]["training"]) / 60,
            "evaluated_on": str(metrics.get("evaluated_on", "")),
        }
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ValueError(f"metrics.json lacks or garbles {error}") from None
    return row


def collect(folder: Path, defaults: Mapping[str, object]) -> RunTable:
    """Every run folder directly inside ``folder``, sorted by name (names start with the time)."""
    table = RunTable()
    for candidate in sorted(folder.iterdir()):
        if not is_run_folder(candidate):
            continue
        try:
            table.rows.append(read_run(candidate, defaults))
        except ValueError as error:
            table.unreadable.append((candidate, str(error)))
    return table


def to_csv(rows: list[dict]) -> str:
    """The rows as CSV, with full-precision numbers."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _markdown_cell(column: str, value: object) -> str:
    if value == "":
        return ""
    if column == "accuracy":
        return f"{value:.1%}"
    if column == "macro_f1":
        return f"{value:.3f}"
    if column == "training_minutes":
        return f"{value:.1f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(rows: list[dict]) -> str:
    """The rows as a Markdown table: accuracy in percent, macro-F1 to 3 digits, minutes to 1."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        lines.append("| " + " | ".join(_markdown_cell(c, row[c]) for c in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def write_tables(folder: Path, table: RunTable) -> list[Path]:
    """Write ``runs.csv`` and ``runs.md`` into ``folder``, atomically; their paths."""
    return [
        runs.write_text(folder / TABLE_FILES[0], to_csv(table.rows)),
        runs.write_text(folder / TABLE_FILES[1], to_markdown(table.rows)),
    ]


def main(argv: list[str] | None = None) -> int:
    """Command line: tabulate the runs in a folder, print the table and where it went."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "folder", nargs="?", type=Path, help="folder of run folders (default: out/)"
    )
    args = parser.parse_args(argv)
    folder = paths.resolve(args.folder) if args.folder else paths.out_root()
    if not folder.is_dir():
        print(f"No folder {paths.display(folder)}: make run creates out/ and a run in it.")
        return 2
    defaults = {
        name: declared.default
        for name, declared in parameters.declared(run_notebook.NOTEBOOK).items()
    }
    table = collect(folder, defaults)
    if not table.rows and not table.unreadable:
        print(f"No runs in {paths.display(folder)} yet: make run makes one.")
        return 0
    written = write_tables(folder, table)
    print(to_markdown(table.rows))
    for run_dir, reason in table.unreadable:
        print(f"Could not read {paths.display(run_dir)}: {reason}")
    print(f"Written to {' and '.join(paths.display(path) for path in written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
