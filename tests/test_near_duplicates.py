"""Perceptual hashes find a planted duplicate and a resized copy, and nothing else."""

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
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


def all_pairs(hashes_a, hashes_b, max_distance, within):
    """Every close pair by the full distance matrix, as the search did before it was blocked."""
    distances = np.bitwise_count(hashes_a[:, np.newaxis] ^ hashes_b[np.newaxis, :])
    close = distances <= max_distance
    if within:
        close &= np.triu(np.ones_like(close), k=1)
    return sorted((distances[i, j], i, j) for i, j in zip(*np.nonzero(close), strict=True))


def random_hashes(rng, count, planted):
    """Random 64-bit hashes with ``planted`` copies that differ from an earlier one in few bits."""
    hashes = rng.integers(0, 2**63, count, dtype=np.int64).astype(np.uint64) * np.uint64(2)
    for index in rng.choice(np.arange(1, count), planted, replace=False):
        flips = rng.choice(64, rng.integers(0, 14), replace=False)
        hashes[index] = hashes[rng.integers(0, index)] ^ np.uint64(sum(1 << int(b) for b in flips))
    return hashes


@pytest.mark.parametrize("block_elements", [1, 7, 300, 1 << 22])
def test_the_blocked_scan_finds_exactly_the_pairs_of_the_full_matrix(block_elements):
    rng = np.random.default_rng(3)
    hashes_a, hashes_b = random_hashes(rng, 230, 40), random_hashes(rng, 90, 10)
    hashes_b[:20] = hashes_a[:20] ^ np.uint64(0b1011)  # copies across the two sets
    files_a = [Path(f"a/{i:03d}.jpg") for i in range(len(hashes_a))]
    files_b = [Path(f"b/{i:03d}.jpg") for i in range(len(hashes_b))]
    for hashes_other, files_other in ((None, None), (hashes_b, files_b)):
        within = hashes_other is None
        expected = all_pairs(hashes_a, hashes_a if within else hashes_other, 12, within)
        found = near_duplicates.close_pairs(
            hashes_a, files_a, hashes_other, files_other, 12, block_elements=block_elements
        )
        found_indices = sorted(
            (p.distance, files_a.index(p.first), (files_a if within else files_b).index(p.second))
            for p in found
        )
        assert len(expected) > (10 if within else 20)
        assert found_indices == [(int(d), int(i), int(j)) for d, i, j in expected]


def test_only_regular_files_within_the_cap_are_hashed(tmp_path):
    """#31: a FIFO blocked the search and a link to /dev/zero grew without end."""
    good = write_jpeg(tmp_path / "good.jpg", painting(1))
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.jpg"
    zero.symlink_to("/dev/zero")
    with ThreadPoolExecutor(max_workers=1) as pool:
        hashes, kept, skipped = pool.submit(near_duplicates.hash_files, [fifo, zero, good]).result(
            timeout=30
        )
    assert kept == [good] and len(hashes) == 1
    assert [(item.path, item.reason) for item in skipped] == [
        (fifo, "not a regular file (a FIFO)"),
        (zero, "not a regular file (a character device)"),
    ]
