"""A folder to give students: the chapter, its helpers and the params files, not the solutions.

Usage (``make handout [HANDOUT=folder] [KEEP_OUTPUTS=1]`` passes its arguments here)::

    python -m utils.handout                      # handout/, the notebook's outputs cleared
    python -m utils.handout --keep-outputs       # outputs kept, to read before running
    python -m utils.handout --to ~/course/week3

The folder holds what a student needs to run the chapter (``make run``, ``make lab``):
the notebook, ``utils/``, ``params/``, ``sweeps/``, the README and ``docs/``, the
environment files and the Makefile, and the measured results the chapter's table shows.
It never holds ``notebooks/solutions.ipynb``, the tests, runs, data or caches. An existing
folder is never written into.
"""

import argparse
import shutil
import sys
from pathlib import Path

import nbformat

from utils import paths, published, run_notebook

# Copied as they are, relative to the project root.
FILES = (
    "README.md",
    "Makefile",
    "requirements.txt",
    "environment.yml",
    "pyproject.toml",
    ".gitignore",
    "out/.gitkeep",
)
FOLDERS = ("utils", "params", "sweeps", "docs")
LEFT_OUT = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")


def cleared(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``notebook`` with every output, execution count and widget state removed."""
    copy = nbformat.from_dict(notebook)
    copy.metadata.pop("widgets", None)
    for cell in copy.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return copy


def write_handout(target: Path, keep_outputs: bool = False) -> Path:
    """Write the handout into ``target``, which must not exist yet; ``target``."""
    if target.exists():
        raise FileExistsError(
            f"{paths.display(target)} already exists; remove it or name another folder "
            "(make handout HANDOUT=...)."
        )
    root = paths.PROJECT_ROOT
    staging = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in FILES:
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, staging / name)
    for name in FOLDERS:
        shutil.copytree(root / name, staging / name, ignore=LEFT_OUT)
    results = published.REAL_PAINTINGS.relative_to(root)
    (staging / results).parent.mkdir(parents=True)
    shutil.copy2(root / results, staging / results)
    notebook = nbformat.read(run_notebook.NOTEBOOK, as_version=4)
    chapter = staging / run_notebook.NOTEBOOK.relative_to(root)
    chapter.parent.mkdir()
    nbformat.write(notebook if keep_outputs else cleared(notebook), chapter)
    staging.rename(target)
    return target


def main(argv: list[str] | None = None) -> int:
    """Command line: write the handout and say what it holds."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--to", type=Path, default=Path("handout"), help="folder to create (default: handout/)"
    )
    parser.add_argument(
        "--keep-outputs", action="store_true", help="keep the notebook's outputs and figures"
    )
    args = parser.parse_args(argv)
    try:
        target = write_handout(paths.resolve(args.to), keep_outputs=args.keep_outputs)
    except FileExistsError as error:
        print(error, file=sys.stderr)
        return 2
    outputs = "kept" if args.keep_outputs else "cleared"
    print(f"Handout written to {paths.display(target)}/ (notebook outputs {outputs}).")
    print("It leaves out the solutions notebook, the tests, runs and data.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
