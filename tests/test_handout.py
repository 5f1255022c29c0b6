"""make handout: the chapter, its helpers and params for students, never the solutions."""

import os
import subprocess
import sys

import nbformat

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
    assert [cell.source for cell in chapter.cells] == [cell.source for cell in original.cells]
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
    assert kept == nbformat.read(run_notebook.NOTEBOOK, as_version=4)


def test_an_existing_folder_is_never_written_into(tmp_path):
    target = tmp_path / "taken"
    target.mkdir()
    (target / "notes.txt").write_text("a teacher's notes")

    result = make_handout(target)

    assert result.returncode != 0
    assert "already exists" in result.stderr
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
