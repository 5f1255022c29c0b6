"""#31: the make targets take the paths users really have, spaces and accented letters too, and
the commands the project prints paste as they are."""

import shlex
import subprocess

from conftest import noise_image, write_jpeg
from test_predict import save_trained
from test_run_table import finished_run

from utils import paths, runs

AWKWARD = "out dir ü"


def make(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", *arguments],
        cwd=paths.PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_printed_resume_command_is_shell_quoted_and_pastes_as_it_is(tmp_path):
    run_dir = tmp_path / AWKWARD / "sp"
    command = runs.resume_command(run_dir)
    assert command == f"make resume RUN={shlex.quote(str(run_dir))}"
    assert shlex.split(command) == ["make", "resume", f"RUN={run_dir}"]


def test_make_resume_takes_a_folder_with_a_space_as_one_path(tmp_path):
    run_dir = tmp_path / AWKWARD / "sp"
    run_dir.mkdir(parents=True)
    result = make("resume", f"RUN={run_dir}")  # what the pasted command gives make
    assert result.returncode == 2
    assert str(run_dir) in result.stderr, result.stderr  # named whole, not cut at the space


def test_make_runs_takes_a_folder_with_a_space(tmp_path):
    out = tmp_path / AWKWARD
    finished_run(out, "20261203-090000-cnn-64px", 0.4, 0.35, 120.0, image_size=32)
    result = make("runs", f"OUT={out}")
    assert result.returncode == 0, result.stderr
    assert "20261203-090000-cnn-64px" in result.stdout


def test_make_handout_takes_a_folder_with_a_space(tmp_path):
    target = tmp_path / AWKWARD / "week 3"
    result = make("handout", f"HANDOUT={target}")
    assert result.returncode == 0, result.stderr
    assert (target / "notebooks").is_dir()


def test_make_sweep_and_duplicates_name_a_path_with_a_space_whole(tmp_path):
    sweep = tmp_path / AWKWARD / "my sweep.yaml"
    result = make("sweep", f"SWEEP={sweep}")
    assert result.returncode != 0 and "my sweep.yaml" in result.stderr + result.stdout
    data = tmp_path / AWKWARD / "my data"
    result = make("duplicates", f"DATA={data}")
    assert result.returncode != 0 and str(data) in result.stderr + result.stdout


def test_make_predict_takes_a_model_and_a_painting_with_spaces(tmp_path):
    """``IMAGES`` is a list: a name with a space goes in shell quotes inside it."""
    model_path = save_trained(tmp_path / AWKWARD / "run")
    painting = write_jpeg(tmp_path / AWKWARD / "my painting.jpg", noise_image(2))
    result = make("predict", f"IMAGES={shlex.quote(str(painting))}", f"MODEL={model_path}")
    assert result.returncode == 0, result.stderr
    assert "my painting.jpg" in result.stdout and "could not be read" not in result.stdout
