"""Perceptual hashes find a planted duplicate and a resized copy, and nothing else."""

import cv2
import numpy as np
from conftest import make_dataset, write_jpeg

from utils import near_duplicates


def painting(seed):
    """A smooth random image, more like a painting than pure noise."""
    small = np.random.default_rng(seed).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return cv2.resize(small, (160, 120), interpolation=cv2.INTER_CUBIC)


def test_hash_survives_resizing_and_recompression():
    original = painting(1)
    resized = cv2.resize(original, (97, 73), interpolation=cv2.INTER_AREA)
    distance = int(
        np.bitwise_count(near_duplicates.phash(original) ^ near_duplicates.phash(resized))
    )
    other = int(
        np.bitwise_count(near_duplicates.phash(original) ^ near_duplicates.phash(painting(2)))
    )
    assert distance <= 4 < 16 <= other


def test_finds_planted_duplicates_within_and_across_splits(tmp_path):
    root = make_dataset(tmp_path, "kaggle", {"Monet": (3, 2), "Degas": (3, 2)})
    for index, folder in enumerate(sorted(root.rglob("Monet")) + sorted(root.rglob("Degas"))):
        for number, path in enumerate(sorted(folder.iterdir())):
            write_jpeg(path, painting(100 * index + number))
    source = root / "training" / "training" / "Monet" / "000.jpg"
    image = cv2.cvtColor(cv2.imread(str(source)), cv2.COLOR_BGR2RGB)
    write_jpeg(root / "training" / "training" / "Degas" / "copy.jpg", image)
    write_jpeg(
        root / "validation" / "validation" / "Monet" / "small.jpg",
        cv2.resize(image, (80, 60), interpolation=cv2.INTER_AREA),
        quality=70,
    )

    found = near_duplicates.find_in_dataset(root).pairs

    within = found["within training"]
    assert [(p.first.name, p.second.name) for p in within] == [("copy.jpg", "000.jpg")] or [
        (p.second.name, p.first.name) for p in within
    ] == [("copy.jpg", "000.jpg")]
    across = found["across training and validation"]
    assert {(p.first.name, p.second.name) for p in across} == {
        ("000.jpg", "small.jpg"),
        ("copy.jpg", "small.jpg"),
    }
    assert found["within validation"] == []
    report = near_duplicates.format_report(found, root)
    assert "within training: 1 pair(s)" in report
    assert "across training and validation: 2 pair(s)" in report


def test_real_subset_leak_is_found(subset_dir):
    found = near_duplicates.find_in_dataset(subset_dir).pairs
    names = {(p.first.name, p.second.name) for p in found["across training and validation"]}
    assert ("214282.jpg", "9223372032559820209.jpg") in names  # one Matisse in both splits
    within = {(p.first.name, p.second.name) for p in found["within training"]}
    assert ("213255.jpg", "213310.jpg") in within  # one Degas with and without its frame


def test_command_line_on_an_empty_or_unreadable_folder(tmp_path, capsys):
    assert near_duplicates.main([str(tmp_path)]) == 2
    assert "no class folders" in capsys.readouterr().err
    assert near_duplicates.main([str(tmp_path / "missing")]) == 2
    assert "Data folder not found" in capsys.readouterr().err
    for artist in ("Monet", "Degas"):
        for split in ("training", "validation"):
            folder = tmp_path / "broken" / split / split / artist
            folder.mkdir(parents=True)
            (folder / "x.jpg").write_bytes(b"not an image")
    assert near_duplicates.main([str(tmp_path / "broken")]) == 1
    captured = capsys.readouterr()
    assert "Hashed 0 image(s)" in captured.out and "Skipped 4" in captured.out
    assert "nothing to compare" in captured.err
