"""Paths resolve from the project root, whatever the working directory."""

import os
from pathlib import Path

from utils import paths


def test_project_root_holds_the_project():
    assert (paths.PROJECT_ROOT / "utils" / "paths.py").is_file()
    assert (paths.PROJECT_ROOT / "notebooks").is_dir()


def test_relative_paths_resolve_from_the_root_not_the_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert paths.resolve("data/sample") == paths.PROJECT_ROOT / "data" / "sample"
    assert paths.resolve(tmp_path / "x") == tmp_path / "x"
    assert paths.resolve("~/x") == Path.home() / "x"


def test_folders_follow_environment_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_ARTISTS_DATA", str(tmp_path / "d"))
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(tmp_path / "o"))
    assert paths.sample_data_dir() == tmp_path / "d" / "sample"
    assert paths.cache_dir() == tmp_path / "d" / "cache"
    assert paths.out_root() == tmp_path / "o"
    monkeypatch.delenv("CNN_ARTISTS_DATA")
    assert paths.data_root() == paths.PROJECT_ROOT / "data"


def test_display_is_relative_inside_the_project():
    assert paths.display(paths.PROJECT_ROOT / "out" / "run") == "out/run"
    assert paths.display("/somewhere/else") == "/somewhere/else"


def test_links_are_not_followed_whether_the_path_is_relative_or_absolute(tmp_path):
    """A relative path used to be resolved (links followed) and an absolute one not, so a
    dangling link named relatively became the place it points to."""
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "nowhere")
    relative = Path(os.path.relpath(link, paths.PROJECT_ROOT))
    assert paths.resolve(link) == link
    assert paths.resolve(relative).is_symlink()
    assert os.path.samefile(paths.resolve(relative).parent, tmp_path)


def test_new_folders_get_what_the_umask_gives():
    umask = os.umask(0o022)
    os.umask(umask)
    assert umask == paths.UMASK
    assert 0o777 & ~umask == paths.FOLDER_MODE
