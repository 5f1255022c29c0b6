"""A folder to give students: the chapter, its helpers and the params files, not the solutions.

Usage (``make handout [HANDOUT=folder] [KEEP_OUTPUTS=1]`` passes its arguments here)::

    python -m utils.handout                      # handout/, the notebook's outputs cleared
    python -m utils.handout --keep-outputs       # outputs kept, to read before running
    python -m utils.handout --to ~/course/week3

The folder holds what a student needs to run the chapter (``make run``, ``make lab``):
the notebook, ``utils/``, ``params/``, ``sweeps/``, the README and ``docs/``, the
environment files and the Makefile, and the measured results the chapter's table shows.
It never holds ``notebooks/solutions.ipynb``, the tests, runs, data or caches. What refers to
them is adapted: the Makefile keeps only the targets that work without them (``make test``
runs the chapter from top to bottom), ``pyproject.toml`` tests the chapter, and a Markdown link
to a file the handout does not hold becomes its plain text. An existing
folder is never written into, and nothing but what the command itself created is ever
removed.
"""

import argparse
import contextlib
import errno
import os
import re
import shutil
import sys
import tempfile
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
# Makefile targets that need the tests, benchmarks or solutions the handout leaves out.
LEFT_OUT_TARGETS = ("test-all", "test-lab", "benchmark")
HANDOUT_TEST = (
    "test: $(PROJECT)  ## Run the chapter from top to bottom; fails on any error "
    "(nbval, outputs not compared)"
)
# The handout's pytest settings: the chapter is its one test, run by nbval in lax mode (its
# outputs are cleared, or a run's, so only errors fail it).
HANDOUT_PYTEST = """[tool.pytest.ini_options]
testpaths = ["notebooks/cnn_artists.ipynb"]
addopts = ["-ra", "--nbval-lax", "--nbval-kernel-name=cnn-artists"]
markers = [
    "slow: not used in the handout",
    "lab: not used in the handout",
]

"""
LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def cleared(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``notebook`` with every output, execution count and widget state removed."""
    copy = nbformat.from_dict(notebook)
    copy.metadata.pop("widgets", None)
    for cell in copy.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return copy


class HandoutError(Exception):
    """The handout cannot be written where asked; the message is one line for the user."""


def refuse_taken(target: Path) -> None:
    """Refuse a ``target`` that exists, or that is a link, even one that leads nowhere."""
    if target.is_symlink() and not target.exists():
        raise HandoutError(
            f"{paths.display(target)} is a link to {os.readlink(target)}, which does not exist; "
            "remove the link or name another folder (make handout HANDOUT=...)."
        )
    if os.path.lexists(target):
        raise HandoutError(
            f"{paths.display(target)} already exists; remove it or name another folder "
            "(make handout HANDOUT=...)."
        )


def make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; the folders created, outermost first."""
    missing = []
    while not folder.is_dir():
        if os.path.lexists(folder):
            raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(folder))
        missing.append(folder)
        folder = folder.parent
    created: list[Path] = []
    try:
        for parent in reversed(missing):
            parent.mkdir()
            created.append(parent)
    except OSError:
        remove_folders(created)
        raise
    return created


def remove_folders(created: list[Path]) -> None:
    """Remove the empty folders in ``created``, innermost first; anything else stays."""
    for folder in reversed(created):
        with contextlib.suppress(OSError):
            folder.rmdir()


def fill(staging: Path, keep_outputs: bool) -> None:
    """Copy the handout's files into the empty folder ``staging``."""
    root = paths.PROJECT_ROOT
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
    adapt(staging)


def handout_makefile(makefile: str) -> str:
    """The project's Makefile without the targets that need what the handout leaves out, and
    with a ``make test`` that runs the chapter."""
    kept: list[str] = []
    block: list[str] = []  # comment lines waiting to see which target they belong to
    dropping = False
    for line in makefile.splitlines(keepends=True):
        target = re.match(r"^([a-z-]+):", line)
        if line.startswith("#"):
            block.append(line)
            continue
        if target:
            dropping = target.group(1) in LEFT_OUT_TARGETS
            if target.group(1) == "test":
                line = HANDOUT_TEST + "\n"
        elif dropping and (line.startswith("\t") or not line.strip()):
            block = []
            continue
        else:
            dropping = False
        if not dropping:
            kept += block
            kept.append(line)
        block = []
    return "".join(kept + block)


def handout_pyproject(pyproject: str) -> str:
    """``pyproject.toml`` with pytest settings that test the chapter, not the project's tests."""
    start = pyproject.index("[tool.pytest.ini_options]")
    end = pyproject.index("\n[tool.", start) + 1
    comment = pyproject.rfind("\n\n", 0, start) + 2  # the comment block above the section
    return pyproject[:comment] + HANDOUT_PYTEST + pyproject[end:]


def without_dead_links(markdown: str, folder: Path, root: Path) -> str:
    """``markdown`` (a file in ``folder``) with each relative link to a file that is not under
    ``root`` replaced by the link's text."""

    def keep_or_text(link: re.Match) -> str:
        text, target = link.groups()
        path = target.split("#")[0]
        if not path or re.match(r"^[a-z]+:", target):
            return link.group(0)
        linked = (folder / path).resolve()
        inside = linked.is_relative_to(root.resolve())
        return link.group(0) if inside and linked.exists() else text

    return LINK.sub(keep_or_text, markdown)


def adapt(staging: Path) -> None:
    """Adapt the copied files in ``staging`` to what the handout holds (module docstring)."""
    makefile = staging / "Makefile"
    makefile.write_text(handout_makefile(makefile.read_text()))
    pyproject = staging / "pyproject.toml"
    pyproject.write_text(handout_pyproject(pyproject.read_text()))
    for page in staging.rglob("*.md"):
        page.write_text(without_dead_links(page.read_text(), page.parent, staging))
    chapter = staging / run_notebook.NOTEBOOK.relative_to(paths.PROJECT_ROOT)
    notebook = nbformat.read(chapter, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source = without_dead_links(cell.source, chapter.parent, staging)
    nbformat.write(notebook, chapter)


def write_handout(target: Path, keep_outputs: bool = False) -> Path:
    """Write the handout into ``target``, which must not exist yet; ``target``.

    The files are copied into a temporary folder of a unique name beside ``target``, which is
    renamed into place when complete. On any failure only what this call created is removed:
    that folder and the missing parents it made, never a file or folder that was there.
    """
    refuse_taken(target)
    try:
        created = make_parents(target.parent)
    except OSError as error:
        raise HandoutError(f"Cannot write the handout to {target}: {reason(error)}.") from None
    staging = None
    try:
        staging = Path(
            tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        )
        fill(staging, keep_outputs)
        staging.chmod(paths.FOLDER_MODE)
        refuse_taken(target)
        staging.rename(target)
    except BaseException as error:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        remove_folders(created)
        if isinstance(error, OSError):
            raise HandoutError(f"Cannot write the handout to {target}: {reason(error)}.") from None
        raise
    return target


def reason(error: OSError) -> str:
    """What went wrong, in a few words: the system's message and the path it concerns."""
    where = f" ({error.filename})" if error.filename else ""
    return f"{error.strerror or error}{where}"


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
    except HandoutError as error:
        print(error, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Stopped; no handout was written.", file=sys.stderr)
        return 130
    outputs = "kept" if args.keep_outputs else "cleared"
    print(f"Handout written to {paths.display(target)}/ (notebook outputs {outputs}).")
    print("It leaves out the solutions notebook, the tests, runs and data.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
