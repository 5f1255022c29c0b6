"""Run folders that never overwrite one another, atomic writes of their artifacts, and
``status.json``, which always says whether a run is running, finished or failed (and where).
"""

import contextlib
import csv
import errno
import fcntl
import io
import json
import os
import platform
import re
import resource
import shlex
import stat
import tempfile
import time
import traceback
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

from utils import paths

STATUS_FILE = "status.json"
RUNNING, FINISHED, FAILED, INTERRUPTED = "running", "finished", "failed", "interrupted"
# The IPython hook that marks the current run failed when a cell raises (one per kernel).
_status_hook = None


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries that shape a run's numbers."""
    names = ("tensorflow", "keras", "numpy", "opencv-python-headless", "scikit-learn", "matplotlib")
    return {"python": platform.python_version()} | {name: version(name) for name in names}


def default_run_name(model: str, image_size: int) -> str:
    """A name that sorts by time and says what ran, e.g. ``20261128-171500-cnn-64px``."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{model}-{image_size}px"


def check_run_name(run_name: str) -> str:
    """``run_name`` if it is safe as a folder name; else a ``ValueError`` that says why."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", run_name):
        raise ValueError(
            f"run_name {run_name!r} must start with a letter or digit and use only "
            "letters, digits, '.', '_' and '-'."
        )
    return run_name


def create_run_dir(run_name: str, out_root: Path | None = None) -> Path:
    """Create ``out/<run_name>``, or ``out/<run_name>-2`` (-3, ...) if that is taken.

    An existing run's folder is never reused. ``make run`` creates the folder first
    and hands it to the notebook (its ``run_folder`` parameter), so the runner and the
    notebook always agree on where the results go.
    """
    out_root = Path(out_root or paths.out_root())
    check_run_name(run_name)
    out_root.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 10_000):
        candidate = out_root / (run_name if attempt == 1 else f"{run_name}-{attempt}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"Could not find a free run folder for {run_name!r} in {out_root}")


def fresh_start_note(run_name: str, run_dir: Path) -> str:
    """A note when ``run_name`` was taken, so this run starts afresh in another folder."""
    if not run_name or run_dir.name == run_name:
        return ""
    taken = run_dir.parent / run_name
    return (
        f" (a new run: {paths.display(taken)} exists; {resume_command(taken)} continues that one)"
    )


def open_run_dir(run_folder: str | os.PathLike[str]) -> Path:
    """The run folder that ``make run`` or ``make resume`` created for this notebook."""
    run_dir = paths.resolve(run_folder)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run_folder {run_folder} does not exist; leave it empty.")
    return run_dir


def start(run_folder: str, run_name: str, model: str, image_size: int) -> Path:
    """This run's folder, marked running (and failed as soon as a later cell raises): the
    one ``make run`` or ``make resume`` made (``run_folder``), or else ``out/<run_name>``
    (``default_run_name`` when empty), created now under a new name if that one is taken
    (``create_run_dir``)."""
    if run_folder:
        run_dir = open_run_dir(run_folder)
    else:
        run_dir = create_run_dir(run_name or default_run_name(model, image_size))
    track_status(run_dir)
    return run_dir


def write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: readers see the old file or the whole new one.
    The file gets the permissions the umask gives, so others may read a run as usual."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(handle, paths.FILE_MODE)  # what the umask gives, as open() would: not 0600
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, data: object) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    return write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def write_history_csv(
    path: Path, history: dict[str, list[float]], phases: list[str] | None = None
) -> Path:
    """Write per-epoch metrics as CSV: an ``epoch`` column, then one column per metric, and
    a ``phase`` column when ``phases`` names each epoch's phase of training."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    names = list(history)
    writer.writerow(["epoch", *names, *(["phase"] if phases else [])])
    for epoch, values in enumerate(zip(*(history[n] for n in names), strict=True), start=1):
        phase = [phases[epoch - 1]] if phases else []
        writer.writerow([epoch, *(f"{v:.6g}" for v in values), *phase])
    return write_text(path, buffer.getvalue())


def safe_file_name(text: str, limit: int = 100) -> str:
    """``text`` made safe as a file name on any system: every character but letters, digits,
    '.', '_' and '-' becomes '_', no leading dot, at most ``limit`` characters."""
    return re.sub(r"[^\w.-]", "_", text, flags=re.ASCII)[:limit].lstrip(".") or "_"


def save_figure(fig, run_dir: Path, name: str, dpi: int = 120) -> Path:
    """Save a Matplotlib figure as ``<run_dir>/<name>.png`` atomically and return the path.

    ``name`` may hold an artist's name: it is made safe first (``safe_file_name``).
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return write_bytes(Path(run_dir) / f"{safe_file_name(name)}.png", buffer.getvalue())


def save_model(model, path: Path) -> Path:
    """Save a Keras model in the native ``.keras`` format, atomically.

    A save that fails (a full disk, say) leaves no temporary file behind.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.stem}.tmp.keras")
    try:
        model.save(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# What a write raises when the disk, the user's quota or the process's file-size limit
# (ulimit -f) leaves no room.
NO_ROOM = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def write_status(run_dir: Path, status: str, **details: object) -> Path:
    """Record the run's state in ``<run_dir>/status.json``, with the time and any details.

    Written atomically when there is room. On a full disk, where even the small temporary
    file of an atomic write cannot be made, the old ``status.json`` is overwritten in place
    instead: it is small, so the block it frees is the one it needs. A failed run never
    stays marked ``running`` for lack of a few bytes.
    """
    path = Path(run_dir) / STATUS_FILE
    record = {"status": status, "time": _now(), **details}
    text = json.dumps(record, indent=2, ensure_ascii=False) + "\n"
    try:
        return write_text(path, text)
    except OSError as error:
        if error.errno not in NO_ROOM or not path.is_file():
            raise
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)
    return path


def read_metrics(run_dir: Path) -> dict:
    """The run's ``metrics.json``: its scores, settings, epochs, image counts and times."""
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def read_status(run_dir: Path) -> dict:
    """The run's ``status.json``; ``{"status": "unknown"}`` when it is missing or unreadable."""
    try:
        status = json.loads((Path(run_dir) / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"status": "unknown"}
    return status if isinstance(status, dict) and "status" in status else {"status": "unknown"}


def no_room_message(error: BaseException, run_dir: Path) -> str:
    """One line for a write that found no room (a full disk, a quota, ``ulimit -f``), or ""
    for any other error."""
    if not isinstance(error, OSError) or error.errno not in NO_ROOM:
        return ""
    if error.errno == errno.EFBIG:
        return (
            f"a file in {paths.display(run_dir)} would grow past this process's file-size "
            "limit (ulimit -f)"
        )
    return f"no space left on the disk that holds {paths.display(run_dir)}"


def cell_error_message(name: str, value: str, run_dir: Path) -> str:
    """A failed cell's error in one line: the no-room sentence for an ``OSError`` whose
    ``[Errno N]`` says the disk is full, else ``name: value``."""
    number = re.match(r"\[Errno (\d+)\]", value or "")
    if number and name.endswith("Error"):
        sentence = no_room_message(OSError(int(number.group(1)), value), run_dir)
        if sentence:
            return sentence
    return f"{name}: {value}"


def mark_failed(run_dir: Path, cell: int | None, error: str, source: str = "") -> Path:
    """Mark the run failed, naming the cell (execution count and first line) and the error."""
    first_line = next((line for line in source.splitlines() if line.strip()), "")
    return write_status(run_dir, FAILED, cell=cell, cell_source=first_line[:120], error=error)


def resume_command(run_dir: Path) -> str:
    """The command that continues an interrupted run, shell-quoted: it pastes as it is,
    whatever the folder's name (spaces, quotes, accented letters)."""
    return f"make resume RUN={shlex.quote(paths.display(run_dir))}"


def mark_interrupted(run_dir: Path, cell: int | None) -> Path:
    """Mark the run interrupted (Ctrl-C, SIGTERM, or the kernel stopped), with how to resume."""
    return write_status(run_dir, INTERRUPTED, cell=cell, resume=resume_command(run_dir))


# Held (fcntl.flock) by the one process that runs or resumes in a run folder.
LOCK_FILE = ".lock"


class RunBusyError(RuntimeError):
    """Another process is running or resuming in this run folder."""


class RunLockError(RunBusyError):
    """The run folder's lock file cannot be taken: it is not a regular file, or the folder
    cannot be written. The message says which, in one line."""


_LOCK_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK


def _open_lock(run_dir: Path) -> int:
    """The lock file's descriptor, created if missing, never through a link (nothing is created
    outside the run folder) and never anything but a regular file."""
    lock = Path(run_dir) / LOCK_FILE
    try:
        descriptor = os.open(lock, _LOCK_FLAGS, 0o644)
    except OSError as error:
        kind = "a link" if lock.is_symlink() else "a folder" if lock.is_dir() else None
        reason = f"it is {kind}, not a lock file" if kind else error.strerror or str(error)
        raise RunLockError(
            f"Cannot take the lock {paths.display(lock)}: {reason}. If no run uses "
            f"{paths.display(run_dir)}, remove {LOCK_FILE} there and try again."
        ) from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise RunLockError(
            f"Cannot take the lock {paths.display(lock)}: it is not a regular file. If no run "
            f"uses {paths.display(run_dir)}, remove {LOCK_FILE} there and try again."
        )
    return descriptor


@contextlib.contextmanager
def hold_run(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir``'s lock for the block: one run or resume at a time in a folder.

    The operating system releases the lock when its process ends, however it ends, so a
    killed run never leaves its folder locked, and a recycled process id cannot pass for a
    live run. Raises ``RunBusyError``, naming the process ``status.json`` records, when
    another process holds it, and ``RunLockError`` when the lock file cannot be taken (a
    folder, a link or a FIFO in its place, or a folder that cannot be written).
    """
    descriptor = _open_lock(run_dir)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = read_status(run_dir).get("pid")
            process = f" (process {pid})" if pid else ""
            raise RunBusyError(
                f"{paths.display(run_dir)} is already running{process}: one run or resume at "
                "a time in a folder."
            ) from None
        yield
    finally:
        os.close(descriptor)


def run_is_live(run_dir: Path) -> bool:
    """Whether a process holds ``run_dir``'s lock, that is, runs or resumes in it now."""
    lock = Path(run_dir) / LOCK_FILE
    try:  # no run can hold anything but a regular file (hold_run refuses the rest)
        descriptor = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False


def process_alive(pid: object) -> bool:
    """True if a process with this id exists (as far as this user can tell)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def track_status(run_dir: Path) -> None:
    """Mark ``run_dir`` running, and failed as soon as any later notebook cell raises.

    Inside IPython (JupyterLab or papermill) a ``post_run_cell`` hook records the failing
    cell and its error, or ``interrupted`` for Ctrl-C (a kernel interrupt); ``finish``
    marks the run finished. Calling it again (re-running
    the setup cell) replaces the previous hook.
    """
    global _status_hook
    write_status(run_dir, RUNNING, pid=os.getpid())
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    if _status_hook is not None:
        shell.events.unregister("post_run_cell", _status_hook)

    def record_failure(result) -> None:
        error = result.error_in_exec or result.error_before_exec
        if isinstance(error, KeyboardInterrupt):
            mark_interrupted(run_dir, result.execution_count)
        elif error is not None:
            message = (
                no_room_message(error, run_dir)
                or "".join(traceback.format_exception_only(type(error), error)).strip()
            )
            # If even this cannot be written, the runner records the failure.
            with contextlib.suppress(OSError):
                mark_failed(run_dir, result.execution_count, message, result.info.raw_cell or "")

    shell.events.register("post_run_cell", record_failure)
    _status_hook = record_failure


def finish(run_dir: Path) -> str:
    """Mark the run finished (every cell ran) and return the status ``status.json`` now holds."""
    write_status(run_dir, FINISHED)
    return read_status(run_dir)["status"]


def peak_memory_mib() -> float:
    """The largest resident memory this process has used so far, in MiB (Linux counts KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
