"""Run the notebook headlessly with papermill, into a run folder of its own.

Usage (``make run PARAMS="..."`` passes its arguments here)::

    python -m utils.run_notebook                              # built-in sample, defaults
    python -m utils.run_notebook -p num_epochs 20 -p image_size 128
    python -m utils.run_notebook -f params/kaggle.yaml -p run_name kaggle-try
    python -m utils.run_notebook --resume out/kaggle-try          # make resume RUN=...
    python -m utils.run_notebook --start out/sweeps-run           # a folder make sweep made

``-p NAME VALUE`` and ``-f FILE.yaml`` work as in papermill; later ones win, and ``-p``
beats ``-f``. Every value is checked against the type the notebook's parameters cell
declares (``utils.parameters``) before papermill writes it into the notebook, and
unknown names are refused, so a typo cannot silently run the defaults and a
parameters file cannot smuggle in code. The executed notebook is saved as
``out/<run_name>/notebook.ipynb`` beside everything the run writes; an existing run
folder is never reused. Ctrl-C or SIGTERM interrupts the run, keeping its completed
epochs, and ``--resume`` continues it in the same folder: only then does the notebook's
``resume`` setting let training restore a checkpoint. Every other run trains from its first
epoch.
"""

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

NOTEBOOK_STARTED = threading.Event()  # set once papermill starts the notebook's kernel
STOP_SIGNALS: list[int] = []  # every Ctrl-C or SIGTERM the runner has received, in order
# Tests only: the name of a start-up stage ("import", "kernel", "cell-N") at which the runner
# waits for a stop signal, so a test can send one exactly there instead of after a delay.
HOLD_AT = "CNN_ARTISTS_HOLD_AT"


def hold(stage: str) -> None:
    """If ``$CNN_ARTISTS_HOLD_AT`` names ``stage``, say so on stderr and wait (at most two
    minutes) until a stop signal has been received; otherwise return at once."""
    if os.environ.get(HOLD_AT) != stage:
        return
    print(f"held at {stage}", file=sys.stderr, flush=True)
    deadline = time.monotonic() + 120
    while not STOP_SIGNALS and time.monotonic() < deadline:
        time.sleep(0.01)


def stop_outside_the_run(signum: int, frame) -> None:
    """Ctrl-C or SIGTERM while the runner starts (importing papermill takes seconds) or
    after the run has ended: exit at once with 128 + the signal, in one line, never with a
    traceback. While the notebook runs, ``stop_signals_interrupt_the_kernel`` answers."""
    STOP_SIGNALS.append(signum)
    if not NOTEBOOK_STARTED.is_set():
        name = signal.Signals(signum).name
        print(f"\n{name}: stopped before the notebook started; nothing ran.", file=sys.stderr)
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, stop_outside_the_run)
    hold("import")

# After the handlers above, so that a signal while these load is one line.
import nbclient.util  # noqa: E402
import papermill  # noqa: E402
import papermill.clientwrap  # noqa: E402
import papermill.engines  # noqa: E402
import papermill.utils  # noqa: E402

from utils import parameters, paths, runs  # noqa: E402

NOTEBOOK = paths.PROJECT_ROOT / "notebooks" / "cnn_artists.ipynb"
KERNEL_NAME = "cnn-artists"


_PAPERMILL_CHATTER = ("Executing", "Ending Cell", "Input Notebook", "Output Notebook", "<Figure")


def _only_cell_output(record: logging.LogRecord) -> bool:
    """Let through what the notebook prints (epoch lines, summaries), not papermill's own steps."""
    return not str(record.msg).startswith(_PAPERMILL_CHATTER)


REQUEST_FILE = "run_request.json"
RESUME = "resume"  # the notebook's setting that only make resume turns on
INTERRUPTED_EXIT_CODE = 130
ATOMIC = "atomic://"


class AtomicNotebookWrites:
    """papermill I/O for ``atomic://`` paths: each save of the executed notebook (one per
    cell) replaces the file whole, so a full disk leaves the last complete notebook and
    no temporary file, never a truncated one."""

    def read(self, path: str) -> str:
        """The notebook's text."""
        return Path(path.removeprefix(ATOMIC)).read_text(encoding="utf-8")

    def listdir(self, path: str) -> list[str]:
        """The folder's entries, as papermill's local handler lists them."""
        folder = path.removeprefix(ATOMIC)
        return [os.path.join(folder, name) for name in os.listdir(folder)]

    def write(self, buf: str, path: str) -> None:
        """Replace the notebook atomically."""
        runs.write_text(Path(path.removeprefix(ATOMIC)), buf)

    def pretty_path(self, path: str) -> str:
        """The plain path, for papermill's messages."""
        return path.removeprefix(ATOMIC)


papermill.iorw.papermill_io.register(ATOMIC, AtomicNotebookWrites())


class StopBeforeCellError(Exception):
    """A stop signal came before a cell started, so the run ends without starting it."""


class KernelInCell:
    """Which kernel process runs a cell right now, if any: where a stop signal is passed on."""

    def __init__(self) -> None:
        self.pid: int | None = None


class StoppableClient(papermill.clientwrap.PapermillNotebookClient):
    """papermill's notebook client, checking for a stop signal before each cell.

    A signal the runner received before a cell starts (while the kernel starts, or between
    two cells) stops the run there, so no further cell runs. During a cell the runner's
    handler interrupts the kernel; a signal that reaches the kernel just before the cell
    starts is kept by ``utils.kernel_stop`` and stops the cell at once.
    """

    in_cell: KernelInCell

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        """Run one cell unless a stop signal came first; meanwhile its kernel can be stopped."""
        hold(f"cell-{cell_index}")
        self.in_cell.pid = self.km.provisioner.process.pid
        try:
            if STOP_SIGNALS:
                raise StopBeforeCellError(f"stopped before cell {cell_index}")
            return await super().async_execute_cell(
                cell, cell_index, execution_count=execution_count, store_history=store_history
            )
        finally:
            self.in_cell.pid = None

    # nbclient binds its own coroutine here, so the override above needs binding again.
    execute_cell = nbclient.util.run_sync(async_execute_cell)


class StoppableEngine(papermill.engines.NBClientEngine):
    """papermill's nbclient engine with ``StoppableClient``; registered as ``stoppable``."""

    @classmethod
    def execute_managed_notebook(
        cls,
        nb_man,
        kernel_name,
        log_output=False,
        start_timeout=60,
        execution_timeout=None,
        in_cell=None,
        **kwargs,
    ):
        """Execute ``nb_man``'s notebook as papermill's engine does, reporting each cell's
        kernel to ``in_cell``."""
        kwargs = papermill.utils.remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
        client = StoppableClient(
            nb_man,
            kernel_name=kernel_name,
            log=papermill.engines.logger,
            log_output=log_output,
            startup_timeout=start_timeout,
            timeout=execution_timeout,
            **kwargs,
        )
        client.in_cell = in_cell or KernelInCell()
        return client.execute()


papermill.engines.papermill_engines.register("stoppable", StoppableEngine)
# Each kernel keeps a SIGINT that comes between two cells (utils/kernel_stop.py).
KERNEL_STOP = "from utils import kernel_stop; kernel_stop.install()"


@dataclass(frozen=True)
class RunOutcome:
    """Where a run went and, if it failed or was interrupted, why."""

    run_dir: Path
    error: str | None = None
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        """True when every cell ran."""
        return self.error is None and not self.interrupted


@contextlib.contextmanager
def stop_signals_interrupt_the_kernel() -> Iterator[KernelInCell]:
    """While the notebook runs, Ctrl-C (SIGINT) and SIGTERM stop it, whenever they come.

    The signal is recorded first. A cell that is running is interrupted (its kernel gets
    SIGINT and raises ``KeyboardInterrupt``: training stops, keeping its last completed
    epoch, and the notebook marks the run interrupted); if none is, none starts after it
    (``StoppableClient``). A second signal stops the runner at once.
    """
    in_cell = KernelInCell()
    STOP_SIGNALS.clear()

    def interrupt(signum: int, frame) -> None:
        STOP_SIGNALS.append(signum)
        if len(STOP_SIGNALS) > 1:
            raise KeyboardInterrupt
        print(f"\n{signal.Signals(signum).name}: stopping the run...", file=sys.stderr, flush=True)
        if in_cell.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(in_cell.pid, signal.SIGINT)

    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield in_cell
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def new_run_dir(values: dict[str, object], declared: Mapping[str, parameters.Declared]) -> Path:
    """Create the run folder for ``values`` and record them there, for ``make resume``."""
    settings = {name: d.default for name, d in declared.items()} | values
    run_name = settings["run_name"] or runs.default_run_name(
        settings["model"], settings["image_size"]
    )
    try:
        run_dir = runs.create_run_dir(run_name)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    except OSError as error:
        raise SystemExit(
            f"Cannot create a run folder under {paths.out_root()}: {error.strerror or error}. "
            "Point CNN_ARTISTS_OUT at a writable folder."
        ) from None
    runs.write_json(run_dir / REQUEST_FILE, {"parameters": values})
    return run_dir


def execute(
    values: dict[str, object],
    notebook: Path,
    declared: Mapping[str, parameters.Declared],
    run_dir: Path | None = None,
    held: bool = False,
    resume: bool = False,
) -> RunOutcome:
    """Execute ``notebook`` with ``values`` into a new run folder (or ``run_dir``, to resume).

    ``values`` must already be checked against ``declared``, the notebook's declared
    parameters (``parameters.declared``, read once by the caller). The notebook is told
    its folder (``run_folder``), so the runner and it always agree. A failed run keeps
    its folder and executed notebook, which shows the error; its ``status.json`` names
    the cell (the notebook writes it, or this function when the kernel itself died).
    The run folder's lock is held throughout (``held``: the caller holds it already).
    ``resume`` (``make resume``) lets the notebook restore the folder's checkpoint.
    """
    run_dir = run_dir or new_run_dir(values, declared)
    if not held:
        with runs.hold_run(run_dir):
            return execute(values, notebook, declared, run_dir, held=True, resume=resume)
    output = run_dir / "notebook.ipynb"
    print(f"Running {paths.display(notebook)} -> {paths.display(output)}", flush=True)
    with stop_signals_interrupt_the_kernel() as in_cell:
        NOTEBOOK_STARTED.set()
        try:
            hold("kernel")
            papermill.execute_notebook(
                str(notebook),
                ATOMIC + str(output),
                parameters={
                    **values,
                    "run_name": run_dir.name,
                    "run_folder": str(run_dir),
                    **({RESUME: resume} if RESUME in declared else {}),
                },
                kernel_name=KERNEL_NAME,
                engine_name="stoppable",
                in_cell=in_cell,
                cwd=str(notebook.parent),
                log_output=True,
                progress_bar=False,
                # The kernel logs only what is fatal (a stop signal during its start made
                # it log ZMQ tracebacks; the runner reports every failure itself), and keeps
                # no history database, which a full disk would fill with sqlite tracebacks.
                extra_arguments=[
                    "--IPKernelApp.log_level=CRITICAL",
                    "--HistoryManager.enabled=False",
                    f"--IPKernelApp.exec_lines={KERNEL_STOP}",
                ],
            )
        except (papermill.PapermillExecutionError, KeyboardInterrupt, StopBeforeCellError) as error:
            if STOP_SIGNALS or getattr(error, "ename", "KeyboardInterrupt") == "KeyboardInterrupt":
                if runs.read_status(run_dir)["status"] != runs.INTERRUPTED:
                    record_status(
                        run_dir, runs.mark_interrupted, getattr(error, "exec_count", None)
                    )
                return RunOutcome(run_dir, interrupted=True)
            message = runs.cell_error_message(error.ename, error.evalue, run_dir)
            if runs.read_status(run_dir)["status"] != runs.FAILED:  # the notebook could not say
                record_status(run_dir, runs.mark_failed, error.exec_count, message, error.source)
            return RunOutcome(run_dir, f"cell {error.exec_count}: {message}")
        except Exception as error:  # the kernel died, timed out, or the disk is full
            message = (
                runs.no_room_message(error, run_dir) or f"{type(error).__name__}: {error}".strip()
            )
            if runs.read_status(run_dir)["status"] != runs.FAILED:
                record_status(run_dir, runs.mark_failed, None, message)
            return RunOutcome(run_dir, message)
    return RunOutcome(run_dir)


def record_status(run_dir: Path, mark: Callable[..., Path], *details: object) -> None:
    """Record how the run ended with ``mark`` (``runs.mark_failed`` or ``mark_interrupted``);
    if even ``status.json`` cannot be written, say so in one line and go on."""
    try:
        mark(run_dir, *details)
    except OSError as error:
        print(
            f"Could not record the run's status in {paths.display(run_dir)}: "
            f"{error.strerror or error}",
            file=sys.stderr,
        )


def prepare_resume(run_dir: Path, declared: Mapping[str, parameters.Declared]) -> dict:
    """The checked parameters of an unfinished run, its notebook kept under another name.

    Raises ``parameters.ParameterError`` when the run cannot be resumed, saying why.
    """
    status = runs.read_status(run_dir)
    if not (run_dir / REQUEST_FILE).is_file():
        raise parameters.ParameterError(
            f"{paths.display(run_dir)} is not a run folder made by make run (no {REQUEST_FILE})."
        )
    if status["status"] == runs.FINISHED:
        raise parameters.ParameterError(f"{paths.display(run_dir)} has already finished.")

    request = parameters.read_yaml(run_dir / REQUEST_FILE)
    if not isinstance(request, dict) or not isinstance(request.get("parameters", {}), dict):
        raise parameters.ParameterError(
            f"{paths.display(run_dir / REQUEST_FILE)} does not hold a run's parameters "
            '(a JSON object {"parameters": {...}}): this run cannot be resumed.'
        )
    values = parameters.check_all(request.get("parameters", {}), declared)
    previous = run_dir / "notebook.ipynb"
    if previous.exists():
        attempt = 1
        while (run_dir / f"notebook.interrupted-{attempt}.ipynb").exists():
            attempt += 1
        previous.rename(run_dir / f"notebook.interrupted-{attempt}.ipynb")
    return values


def show_cell_output() -> None:
    """Log what the notebook prints to the terminal, without papermill's own chatter."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("papermill").addFilter(_only_cell_output)


def parameter_pairs(argv: list[str]) -> tuple[list[list[str]], list[str]]:
    """The ``-p NAME VALUE`` pairs of ``argv``, and the arguments left for argparse.

    Taken out first because argparse reads a value such as ``-1e-3`` or ``-inf`` as an
    option and refuses the pair; here the two words after ``-p`` are always its name and
    value. An incomplete pair is left for argparse to report.
    """
    pairs, rest, index = [], [], 0
    while index < len(argv):
        if argv[index] in ("-p", "--parameters") and index + 2 < len(argv):
            pairs.append([argv[index + 1], argv[index + 2]])
            index += 3
        else:
            rest.append(argv[index])
            index += 1
    return pairs, rest


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
    started = parser.add_mutually_exclusive_group()
    started.add_argument(
        "--resume", type=Path, metavar="RUN_DIR", help="continue an interrupted or killed run"
    )
    started.add_argument(
        "--start", type=Path, metavar="RUN_DIR", help="run a folder made by make sweep, afresh"
    )
    pairs, rest = parameter_pairs(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(rest)
    args.parameters = pairs + args.parameters
    show_cell_output()
    declared = parameters.declared(args.notebook)
    with contextlib.ExitStack() as held:
        run_dir = None
        try:
            if args.resume or args.start:
                run_dir = paths.resolve(args.resume or args.start)
                if (run_dir / REQUEST_FILE).is_file():  # else prepare_resume says what it is
                    held.enter_context(runs.hold_run(run_dir))
                values = prepare_resume(run_dir, declared)
            else:
                values = parameters.collect(args.parameters_file, args.parameters, declared)
            if RESUME in values:
                raise parameters.ParameterError(
                    f"{RESUME} is set by make resume RUN=out/<run_name> alone; leave it out."
                )
            if set(parameters.CHECKED) <= set(declared):
                defaults = {name: declaration.default for name, declaration in declared.items()}
                parameters.validate(defaults | values)
        except (parameters.ParameterError, runs.RunBusyError) as error:
            print(error, file=sys.stderr)
            return 2
        outcome = execute(
            values,
            args.notebook,
            declared,
            run_dir,
            held=run_dir is not None,
            resume=args.resume is not None,
        )
    where = paths.display(outcome.run_dir)
    if outcome.interrupted:
        print(
            f"\nInterrupted; completed epochs are kept in {where}. "
            f"Resume with: {runs.resume_command(outcome.run_dir)}",
            file=sys.stderr,
        )
        return INTERRUPTED_EXIT_CODE
    if not outcome.ok:
        separator = " in" if outcome.error.startswith("cell ") else ":"
        print(f"\nThe run failed{separator} {outcome.error}", file=sys.stderr)
        print(f"The notebook with the error is at {where}/notebook.ipynb", file=sys.stderr)
        return 1
    print(f"\nDone. Results are in {where}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
