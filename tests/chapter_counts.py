"""Count what issue 29 measures in the chapter: cells, code-cell lengths, and calls into the
project's helpers against calls into Keras.

    .venv/bin/python tests/chapter_counts.py [notebook]

A call whose name starts with a ``utils`` module (``training.``, ``plots.``...) is a helper
call; a call through ``keras.``, ``layers.`` or ``tf.``, or a model's ``compile``, ``fit``,
``evaluate``, ``predict``, ``summary`` or ``save``, is a Keras call. Line magics are skipped.
"""

import ast
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

from utils import run_notebook

HELPER_MODULES = {path.stem for path in (Path(run_notebook.__file__).parent).glob("*.py")}
KERAS_ROOTS = {"keras", "layers", "tf"}
KERAS_METHODS = {"compile", "fit", "evaluate", "predict", "summary", "save"}


@dataclass(frozen=True)
class ChapterCounts:
    """What the counting rule finds in one notebook."""

    cells: int
    code_lines: list[int]  # lines of each code cell but the parameters cell
    helper_calls: int
    keras_calls: int

    @property
    def longest(self) -> int:
        """The longest code cell, in lines."""
        return max(self.code_lines)

    @property
    def median(self) -> float:
        """The median code cell, in lines."""
        return statistics.median(self.code_lines)


def call_chain(call: ast.Call) -> list[str]:
    """``a.b.c(...)`` as ``["a", "b", "c"]``; empty when the call is not on a plain name."""
    chain, target = [], call.func
    while isinstance(target, ast.Attribute):
        chain.append(target.attr)
        target = target.value
    if not isinstance(target, ast.Name):
        return []
    return [target.id, *reversed(chain)]


def count(path: Path = run_notebook.NOTEBOOK) -> ChapterCounts:
    """Count ``path``'s cells, code lines and calls by the rule above."""
    notebook = nbformat.read(path, as_version=4)
    code_lines, helpers, keras_calls = [], 0, 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        if "parameters" not in cell.metadata.get("tags", []):
            code_lines.append(len(cell.source.splitlines()))
        source = "\n".join(line for line in cell.source.splitlines() if not line.startswith("%"))
        for node in ast.walk(ast.parse(source)):
            chain = call_chain(node) if isinstance(node, ast.Call) else []
            if len(chain) > 1 and chain[0] in HELPER_MODULES:
                helpers += 1
            elif chain and (
                chain[0] in KERAS_ROOTS or (len(chain) > 1 and chain[-1] in KERAS_METHODS)
            ):
                keras_calls += 1
    return ChapterCounts(len(notebook.cells), code_lines, helpers, keras_calls)


if __name__ == "__main__":
    counts = count(Path(sys.argv[1]) if len(sys.argv) > 1 else run_notebook.NOTEBOOK)
    print(f"cells {counts.cells}, code cells {len(counts.code_lines) + 1}")
    print(
        f"code lines: longest {counts.longest}, median {counts.median}, "
        f"over 25: {sum(n > 25 for n in counts.code_lines)}, "
        f"under 10: {sum(n < 10 for n in counts.code_lines)}"
    )
    print(f"calls: helpers {counts.helper_calls}, Keras {counts.keras_calls}")
