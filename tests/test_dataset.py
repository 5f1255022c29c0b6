"""Layouts, the one sorted class list, listing rules and dataset errors."""

import csv
import os
import unicodedata
from collections import Counter

import numpy as np
import pytest
from conftest import make_dataset, noise_image, write_jpeg

from utils import dataset


def test_kaggle_layout_and_sorted_class_list(kaggle_dataset):
    files = dataset.collect_files(kaggle_dataset)
    assert files.layout.kind == "kaggle"
    assert files.class_names == ["Degas", "Monet", "Renoir"]
    assert np.bincount(files.train.labels).tolist() == [4, 4, 4]
    assert np.bincount(files.val.labels).tolist() == [2, 2, 2]
    assert all(
        path.parent.name == files.class_names[label]
        for path, label in zip(files.train.paths, files.train.labels, strict=True)
    )


def test_flat_layout(tmp_path):
    root = make_dataset(tmp_path, "flat", {"B": (3, 1), "A": (3, 1)})
    files = dataset.collect_files(root)
    assert files.layout.kind == "flat"
    assert files.class_names == ["A", "B"]
    assert len(files.val.paths) == 2


def test_single_folder_gets_a_stratified_seeded_split(tmp_path):
    root = make_dataset(tmp_path, "single", {"A": (10, 0), "B": (20, 0)})
    first = dataset.collect_files(root, validation_split=0.2, seed=1)
    again = dataset.collect_files(root, validation_split=0.2, seed=1)
    other = dataset.collect_files(root, validation_split=0.2, seed=2)
    assert first.layout.kind == "single"
    assert Counter(first.val.labels.tolist()) == {0: 2, 1: 4}
    assert Counter(first.train.labels.tolist()) == {0: 8, 1: 16}
    assert first.val.paths == again.val.paths
    assert first.val.paths != other.val.paths
    assert not set(first.val.paths) & set(first.train.paths)


def test_validation_split_must_be_a_fraction(tmp_path):
    root = make_dataset(tmp_path, "single", {"A": (5, 0), "B": (5, 0)})
    with pytest.raises(dataset.DatasetError, match="between 0 and 1"):
        dataset.collect_files(root, validation_split=20)


def test_missing_folder_says_how_to_get_the_data(tmp_path):
    with pytest.raises(dataset.DataNotFoundError) as error:
        dataset.collect_files(tmp_path / "nowhere")
    message = str(error.value)
    assert "nowhere" in message
    assert "kaggle datasets download -d delayedkarma/impressionist-classifier-data" in message
    assert dataset.KAGGLE_URL in message


def test_folder_without_classes_is_an_error(tmp_path):
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(dataset.DatasetError, match="no class folders"):
        dataset.collect_files(tmp_path)


def test_training_without_validation_is_an_error(tmp_path):
    make_dataset(tmp_path, "single", {"A": (2, 0)})
    (tmp_path / "training").mkdir()
    with pytest.raises(dataset.DatasetError, match="no validation folder"):
        dataset.collect_files(tmp_path)


def test_validation_class_unknown_to_training_is_named(kaggle_dataset):
    write_jpeg(kaggle_dataset / "validation" / "validation" / "Sisley" / "x.jpg", noise_image(1))
    with pytest.raises(dataset.DatasetError, match="Sisley"):
        dataset.collect_files(kaggle_dataset)


def test_training_class_missing_from_validation_warns(kaggle_dataset):
    for path in (kaggle_dataset / "validation" / "validation" / "Renoir").iterdir():
        path.unlink()
    (kaggle_dataset / "validation" / "validation" / "Renoir").rmdir()
    with pytest.warns(UserWarning, match="Renoir"):
        files = dataset.collect_files(kaggle_dataset)
    assert files.class_names == ["Degas", "Monet", "Renoir"]
    assert 2 not in files.val.labels


def test_empty_class_folder_is_an_error(kaggle_dataset):
    (kaggle_dataset / "training" / "training" / "Sargent").mkdir()
    with pytest.raises(dataset.DatasetError, match=r"Sargent.*contains no images"):
        dataset.collect_files(kaggle_dataset)


def test_hidden_files_folders_and_non_images_are_ignored(kaggle_dataset):
    monet = kaggle_dataset / "training" / "training" / "Monet"
    (monet / ".DS_Store").write_bytes(b"\0\0")
    (monet / "._000.jpg").write_bytes(b"resource fork")
    (monet / "notes.txt").write_text("provenance")
    (monet / "Thumbs.db").write_bytes(b"\0")
    write_jpeg(
        kaggle_dataset / "training" / "training" / ".ipynb_checkpoints" / "a.jpg", noise_image(2)
    )
    with pytest.warns(UserWarning, match=r"hidden folder .*\.ipynb_checkpoints"):
        files = dataset.collect_files(kaggle_dataset)
    assert files.class_names == ["Degas", "Monet", "Renoir"]
    assert sum(path.parent.name == "Monet" for path in files.train.paths) == 4


def test_upper_case_extensions_are_images(kaggle_dataset):
    write_jpeg(kaggle_dataset / "training" / "training" / "Degas" / "SCAN.JPG", noise_image(3))
    write_jpeg(kaggle_dataset / "training" / "training" / "Degas" / "photo.Jpeg", noise_image(4))
    files = dataset.collect_files(kaggle_dataset)
    assert sum(path.parent.name == "Degas" for path in files.train.paths) == 6


def test_non_ascii_artist_names_match_across_unicode_forms(tmp_path):
    nfc = unicodedata.normalize("NFC", "Cézanne")
    nfd = unicodedata.normalize("NFD", "Cézanne")
    write_jpeg(tmp_path / "training" / "training" / nfc / "a.jpg", noise_image(5))
    write_jpeg(tmp_path / "validation" / "validation" / nfd / "b.jpg", noise_image(6))
    write_jpeg(tmp_path / "training" / "training" / "Degas" / "c.jpg", noise_image(7))
    write_jpeg(tmp_path / "validation" / "validation" / "Degas" / "d.jpg", noise_image(8))
    files = dataset.collect_files(tmp_path)
    assert files.class_names == [nfc, "Degas"]
    assert files.val.labels.tolist() == [0, 1]


def test_count_table_lists_every_class_and_totals(kaggle_dataset):
    files = dataset.collect_files(kaggle_dataset)
    table = dataset.count_table(
        files.class_names, {"training": files.train.labels, "validation": files.val.labels}
    )
    lines = table.splitlines()
    assert lines[0].split() == ["Artist", "training", "validation"]
    assert lines[2].split() == ["Degas", "4", "2"]
    assert lines[-1].split() == ["Total", "12", "6"]


def test_pick_per_class(kaggle_dataset):
    files = dataset.collect_files(kaggle_dataset)
    picked = dataset.pick_per_class(files.train, per_class=2, seed=0)
    assert picked.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert picked.paths == dataset.pick_per_class(files.train, per_class=2, seed=0).paths


def test_real_subset_matches_its_manifest(subset_dir):
    with open(subset_dir / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    files = dataset.collect_files(subset_dir)
    assert files.layout.kind == "kaggle"
    assert files.class_names == sorted({row["artist"] for row in rows})
    for split_name, split in (("training", files.train), ("validation", files.val)):
        expected = Counter(row["artist"] for row in rows if row["split"] == split_name)
        found = Counter(files.class_names[label] for label in split.labels)
        assert found == expected
    assert len(files.train.paths) + len(files.val.paths) == len(rows) == 1230


def test_holdout_folds_partition_the_training_split_and_skip_validation(tmp_path):
    root = make_dataset(tmp_path / "d", "kaggle", {c: (10, 3) for c in ("A", "B", "C")})
    every_training_file = set(dataset.collect_files(root).train.paths)
    held_out = []
    for fold in range(1, 6):
        files = dataset.collect_files(root, holdout_fold=fold, holdout_folds=5, seed=fold)
        train, val = set(files.train.paths), set(files.val.paths)
        assert not train & val
        assert train | val == every_training_file
        assert np.bincount(files.val.labels).tolist() == [2, 2, 2]
        assert all("training" in p.parts for p in val)
        held_out.append(val)
    assert set().union(*held_out) == every_training_file
    again = dataset.collect_files(root, holdout_fold=2, holdout_folds=5, seed=99)
    assert set(again.val.paths) == held_out[1]


@pytest.mark.parametrize(("fold", "folds"), [(6, 5), (-1, 5), (1, 1), (1, 20)])
def test_impossible_holdout_folds_are_refused(tmp_path, fold, folds):
    root = make_dataset(tmp_path / "d", "kaggle", {c: (10, 3) for c in ("A", "B")})
    with pytest.raises(dataset.DatasetError, match=r"holdout_folds?"):
        dataset.collect_files(root, holdout_fold=fold, holdout_folds=folds)


def test_a_single_artist_is_refused(tmp_path):
    root = make_dataset(tmp_path / "d", "kaggle", {"Monet": (4, 2)})
    with pytest.raises(dataset.DatasetError, match="at least two"):
        dataset.collect_files(root)


def test_hidden_and_non_utf8_folders_are_named_and_skipped(kaggle_dataset):
    train_dir = kaggle_dataset / "training" / "training"
    write_jpeg(train_dir / ".Sisley" / "x.jpg", noise_image(1))
    write_jpeg(train_dir / os.fsdecode(b"Mon\xe9t-latin1") / "x.jpg", noise_image(2))
    with pytest.warns(UserWarning) as caught:
        files = dataset.collect_files(kaggle_dataset)
    messages = " ".join(str(w.message) for w in caught)
    assert ".Sisley" in messages and "hidden" in messages
    assert "Mon\\xe9t-latin1" in messages and "not valid UTF-8" in messages
    assert files.class_names == ["Degas", "Monet", "Renoir"]


def test_non_utf8_file_names_are_named_and_skipped(kaggle_dataset):
    folder = kaggle_dataset / "training" / "training" / "Monet"
    write_jpeg(folder / os.fsdecode(b"caf\xe9.jpg"), noise_image(3))
    with pytest.warns(UserWarning, match=r"caf\\xe9\.jpg"):
        files = dataset.collect_files(kaggle_dataset)
    assert len(files.train.paths) == 12
    assert all(name.encode() for name in map(str, files.train.paths))


def test_counts_per_class_names_every_class_in_order():
    counts = dataset.counts_per_class(["A", "B", "C"], np.array([2, 0, 2, 2]))
    assert list(counts.items()) == [("A", 1), ("B", 0), ("C", 3)]


def test_links_fifos_and_devices_are_named_for_what_they_are_not_dropped_silently(kaggle_dataset):
    monet = kaggle_dataset / "training" / "training" / "Monet"
    (monet / "gone.jpg").symlink_to(monet / "deleted-long-ago.jpg")
    (monet / "loop.jpg").symlink_to(monet / "loop.jpg")
    (monet / "copy.jpg").symlink_to(sorted(monet.glob("*.jpg"))[0])  # a working link is kept
    os.mkfifo(monet / "pipe.jpg")
    (monet / "zero.jpg").symlink_to("/dev/zero")
    with pytest.warns(UserWarning, match=r"Skipping 4 entries named like images") as caught:
        files = dataset.collect_files(kaggle_dataset)
    message = next(str(w.message) for w in caught if "Skipping 4 entries" in str(w.message))
    assert "gone.jpg (a link that leads to no file)" in message
    assert "loop.jpg (a link in a loop)" in message
    assert "pipe.jpg (a FIFO)" in message  # #31: dropped without being named
    assert "zero.jpg (a link to a character device)" in message  # was "dangling, or a loop"
    assert sum(path.parent.name == "Monet" for path in files.train.paths) == 5
