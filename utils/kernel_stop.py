"""A kernel that never loses a stop signal: what ``make run`` loads into each kernel it starts.

ipykernel ignores SIGINT while no cell runs, so a Ctrl-C that the runner passes on just
between two cells, or while a cell's request is still on its way, used to be lost and the
next cell ran to its end. ``install`` records such a signal instead, and the next cell then
stops at once with ``KeyboardInterrupt``, as if the signal had come during it. Inside a
cell ipykernel's own handler raises ``KeyboardInterrupt`` as usual.

A run stopped that way shuts its kernel down at once, and ipykernel 7 may then log a ZMQError
from a socket it has already closed ("Uncaught exception in ZMQStream callback", through
tornado's logger): noise after the fact, which ``install`` silences. The runner reports how
the run ended itself.
"""

import ast
import logging
import signal
from types import FrameType

STOPPED_CELL = "raise KeyboardInterrupt('stopped before this cell started')"


class PendingInterrupt(ast.NodeTransformer):
    """Remembers a SIGINT that came while the kernel was idle; IPython passes each cell's
    syntax tree through ``visit`` before running it (``InteractiveShell.ast_transformers``)."""

    def __init__(self) -> None:
        self.pending = False

    def record(self, signum: int, frame: FrameType | None) -> None:
        """The idle kernel's SIGINT handler: remember the signal for the next cell."""
        self.pending = True

    def visit(self, node: ast.AST) -> ast.AST:
        """The cell as written, or, once after a recorded signal, a cell that stops at once."""
        if not self.pending:
            return node
        self.pending = False
        return ast.parse(STOPPED_CELL)


def install(shell=None) -> PendingInterrupt:
    """Make ``shell`` (the running IPython kernel's) keep a SIGINT that comes between cells.

    Call it while no cell runs, as ``--IPKernelApp.exec_lines`` does: ipykernel restores the
    handler installed here after every cell.
    """
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    pending = PendingInterrupt()
    signal.signal(signal.SIGINT, pending.record)
    shell.ast_transformers.append(pending)
    logging.getLogger("tornado").setLevel(logging.CRITICAL)
    return pending
