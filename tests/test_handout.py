"""make handout: the chapter, its helpers and params for students, never the solutions."""

import errno
import os
import subprocess
import sys

import nbformat
import pytest

from utils import handout, paths, run_notebook


def make_handout(target, *extra):
    return subprocess.run(
        ["make", "--no-print-directory", "handout", f"HANDOUT={target}", *extra],
        cwd=paths.PROJECT_ROOT,
        capture_output=True,
        text=True,
    )


def test_the_handout_holds_the_chapter_and_its_helpers_but_no_solutions(tmp_path):
    target = tmp_path / "week3"
    result = make_handout(target)

    assert result.returncode == 0, result.stderr
    assert "notebook outputs cleared" in result.stdout
    handed_out = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()}
    assert {
        "README.md",
        "Makefile",
        "requirements.txt",
        "environment.yml",
        "notebooks/cnn_artists.ipynb",
        "utils/training.py",
        "params/transfer-quick.yaml",
        "benchmarks/results/real_paintings.json",
    } <= handed_out
    assert not any(name.startswith(("tests/", "data/", ".venv/")) for name in handed_out)
    assert "notebooks/solutions.ipynb" not in handed_out
    assert not any("__pycache__" in name for name in handed_out)

    chapter = nbformat.read(target / "notebooks" / "cnn_artists.ipynb", as_version=4)
    original = nbformat.read(run_notebook.NOTEBOOK, as_version=4)
    assert [cell.source for cell in chapter.cells if cell.cell_type == "code"] == [
        cell.source for cell in original.cells if cell.cell_type == "code"
    ]
    prose = [c.source for c in original.cells if c.cell_type == "markdown"]
    handed_out_prose = [c.source for c in chapter.cells if c.cell_type == "markdown"]
    assert handed_out_prose != prose  # the link to the solutions is its text now
    assert [p.replace("(solutions.ipynb)", "") for p in prose] == [
        p.replace("the worked solutions", "[the worked solutions]") for p in handed_out_prose
    ]
    code_cells = [cell for cell in chapter.cells if cell.cell_type == "code"]
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code_cells)
    assert "widgets" not in chapter.metadata


def test_the_handout_imports_its_own_helpers_and_finds_their_files(tmp_path):
    target = handout.write_handout(tmp_path / "handout")
    probe = (
        "import utils, utils.published as published, utils.run_notebook as run_notebook\n"
        "from utils import parameters\n"
        "print(utils.__file__)\n"
        "assert published.load()\n"
        "assert 'image_size' in parameters.declared(run_notebook.NOTEBOOK)\n"
    )
    env = os.environ | {"PYTHONPATH": str(target)}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=target, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(target / "utils" / "__init__.py")


def test_outputs_are_kept_on_request(tmp_path):
    target = tmp_path / "with-outputs"
    assert make_handout(target, "KEEP_OUTPUTS=1").returncode == 0
    kept = nbformat.read(target / "notebooks" / "cnn_artists.ipynb", as_version=4)
    original = nbformat.read(run_notebook.NOTEBOOK, as_version=4)
    assert [c.outputs for c in kept.cells if c.cell_type == "code"] == [
        c.outputs for c in original.cells if c.cell_type == "code"
    ]


def test_an_existing_folder_is_never_written_into(tmp_path):
    target = tmp_path / "taken"
    target.mkdir()
    (target / "notes.txt").write_text("a teacher's notes")

    result = make_handout(target)

    assert result.returncode != 0
    assert "already exists" in result.stderr
    assert [p.name for p in target.iterdir()] == ["notes.txt"]


def handout_command(target):
    """``python -m utils.handout --to target``, as make runs it, without make's own line."""
    return subprocess.run(
        [sys.executable, "-m", "utils.handout", "--to", str(target)],
        cwd=paths.PROJECT_ROOT,
        capture_output=True,
        text=True,
    )


def both_ways(path):
    """``path`` as an absolute path, and relative to the project root (which make uses)."""
    return [str(path), os.path.relpath(path, paths.PROJECT_ROOT)]


def everything_under(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


@pytest.mark.parametrize("way", [0, 1], ids=["absolute", "relative"])
def test_a_folder_beside_the_target_is_never_removed(tmp_path, way):
    """The temporary folder used to be a fixed name beside the target (``.victim.tmp``),
    removed with everything in it; a user's folder of that name went with it."""
    beside = tmp_path / "handout" / ".victim.tmp"
    beside.mkdir(parents=True)
    (beside / "notes.txt").write_text("a student's notes")

    result = make_handout(both_ways(tmp_path / "handout" / "victim")[way])

    assert result.returncode == 0, result.stderr
    assert (beside / "notes.txt").read_text() == "a student's notes"
    assert sorted(p.name for p in (tmp_path / "handout").iterdir()) == [".victim.tmp", "victim"]


@pytest.mark.parametrize("way", [0, 1], ids=["absolute", "relative"])
def test_a_dangling_link_is_refused_in_one_line_and_nothing_is_written(tmp_path, way):
    """A dangling link used to be followed, leaving a full ``.dangling.tmp`` copy."""
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")

    result = handout_command(both_ways(tmp_path / "dangling")[way])

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "is a link to" in result.stderr and "which does not exist" in result.stderr
    assert everything_under(tmp_path) == ["dangling"]


@pytest.mark.parametrize(
    ("target", "says"),
    [("afile/sub", "not a folder"), ("afile/sub/deeper", "not a folder")],
)
def test_a_target_under_a_file_is_one_line_and_leaves_nothing(tmp_path, target, says):
    (tmp_path / "afile").write_text("not a folder")

    result = handout_command(tmp_path / target)

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "Cannot write the handout to" in result.stderr and says in result.stderr
    assert everything_under(tmp_path) == ["afile"]


def test_an_unwritable_place_is_one_line():
    result = handout_command("/proc/handout")
    assert result.returncode == 2
    assert result.stderr.startswith("Cannot write the handout to /proc/handout: ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not any(name.startswith(".handout") for name in os.listdir("/proc"))


def test_a_failure_while_copying_removes_only_what_the_handout_created(tmp_path, monkeypatch):
    """The disk fills halfway: the temporary folder and the parents the handout made go,
    and what was there before stays."""
    (tmp_path / "course").mkdir()
    (tmp_path / "course" / "syllabus.md").write_text("week 3")
    real_fill = handout.fill

    def fill_then_no_room(staging, keep_outputs):
        real_fill(staging, keep_outputs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(handout, "fill", fill_then_no_room)
    with pytest.raises(handout.HandoutError, match="No space left on device"):
        handout.write_handout(tmp_path / "course" / "week3" / "handout")
    assert everything_under(tmp_path) == ["course", "course/syllabus.md"]


def test_the_handout_gets_the_permissions_the_umask_gives(tmp_path):
    """A temporary folder is made 0700; the handout itself is a folder like any other."""
    target = handout.write_handout(tmp_path / "h")
    assert target.stat().st_mode & 0o777 == paths.FOLDER_MODE


def test_the_handouts_makefile_and_tests_need_nothing_it_leaves_out(tmp_path):
    """The handout used to copy the Makefile as it is: make test gave 28 errors there (no
    tests/) and make benchmark had no script. Its make test now runs the chapter."""
    target = handout.write_handout(tmp_path / "h")
    recipes = [line for line in (target / "Makefile").read_text().splitlines() if line[:1] == "\t"]
    assert not [line for line in recipes if "tests/" in line or "benchmarks/" in line]
    listed = subprocess.run(
        ["make", "--no-print-directory", "help"],
        cwd=target,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    targets = {line.split()[1] for line in listed.splitlines()}
    assert {"run", "lab", "resume", "test", "runs"} <= targets
    assert not targets & {"test-all", "test-lab", "benchmark"}
    assert "Run the chapter from top to bottom" in listed
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q"],
        cwd=target,
        capture_output=True,
        text=True,
    )
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert "notebooks/cnn_artists.ipynb::Cell 0" in collected.stdout


def test_the_handout_has_no_dead_links(tmp_path):
    """The chapter and docs linked to notebooks/solutions.ipynb, which the handout leaves out;
    such a link is now its plain text."""
    target = handout.write_handout(tmp_path / "h")
    chapter = nbformat.read(target / "notebooks" / "cnn_artists.ipynb", as_version=4)
    pages = [(page.read_text(), page.parent) for page in target.rglob("*.md")]
    pages += [(c.source, target / "notebooks") for c in chapter.cells if c.cell_type == "markdown"]
    checked = 0
    for text, folder in pages:
        for _, link in handout.LINK.findall(text):
            path = link.split("#")[0]
            if path and ":" not in link:
                assert (folder / path).resolve().is_relative_to(target), link
                assert (folder / path).exists(), link
                checked += 1
    assert checked > 20
    assert "solutions.ipynb)" not in "".join(text for text, _ in pages)
