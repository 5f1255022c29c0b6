"""The synthetic sample: deterministic, in the Kaggle layout, with its three planted quirks."""

import numpy as np

from utils import dataset, loading, paths, sample_data


def file_bytes(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*.jpg"))}


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    first = sample_data.generate(tmp_path / "a", seed=7, train_per_class=2, val_per_class=1)
    again = sample_data.generate(tmp_path / "b", seed=7, train_per_class=2, val_per_class=1)
    other = sample_data.generate(tmp_path / "c", seed=8, train_per_class=2, val_per_class=1)
    assert file_bytes(first) == file_bytes(again)
    assert file_bytes(first) != file_bytes(other)


def test_layout_classes_and_quirks(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_ARTISTS_DATA", str(tmp_path / "data-root"))
    root = sample_data.generate(tmp_path / "sample", train_per_class=3, val_per_class=2)
    files = dataset.collect_files(root)
    assert files.layout.kind == "kaggle"
    assert files.class_names == sorted(sample_data.ARTISTS)
    assert len(files.train.paths) == 30 and len(files.val.paths) == 20
    training = root / "training" / "training"
    assert (training / "Hassam" / "hassam_000.jpg").read_bytes()[:4] == b"\x89PNG"
    assert "synthetic" in (root / "README.md").read_text().lower()

    data = loading.load_dataset(root, 32)
    assert [item.path.name for item in data.skipped] == ["degas_002.jpg"]
    monet_gray = data.train.X[data.train.paths.index(training / "Monet" / "monet_001.jpg")]
    assert np.array_equal(monet_gray[..., 0], monet_gray[..., 2])


def test_paintings_vary_in_size_and_shape():
    rng = np.random.default_rng(0)
    shapes = {sample_data.paint(sample_data.STYLES["Monet"], rng).shape[:2] for _ in range(8)}
    assert len(shapes) == 8
    assert any(h > w for h, w in shapes) and any(w > h for h, w in shapes)


def test_ensure_sample_data_writes_once(tmp_path, monkeypatch):
    calls = []
    real_generate = sample_data.generate

    def small_generate(target, seed):
        calls.append(target)
        return real_generate(target, seed, train_per_class=1, val_per_class=1)

    monkeypatch.setattr(sample_data, "generate", small_generate)
    target = tmp_path / "sample"
    assert sample_data.ensure_sample_data(target) == target
    assert sample_data.ensure_sample_data(target) == target
    assert len(calls) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".sample-")]
    assert target.stat().st_mode & 0o777 == paths.FOLDER_MODE  # not mkdtemp's 0700 (#31)


def test_the_unseen_paintings_are_in_neither_split_and_leave_the_splits_as_they_were(
    tmp_path, monkeypatch
):
    root = sample_data.generate(tmp_path / "sample", seed=5, train_per_class=2, val_per_class=1)
    files = dataset.collect_files(root)
    unseen = [sample_data.unseen_painting(root, artist) for artist in sample_data.ARTISTS]
    assert all(path.is_file() for path in unseen)
    split_bytes = {path.read_bytes() for path in [*files.train.paths, *files.val.paths]}
    assert not split_bytes & {path.read_bytes() for path in unseen}
    assert unseen[sample_data.ARTISTS.index("Renoir")].name == "renoir.jpg"

    splits = {name: data for name, data in file_bytes(root).items() if name.parts[0] != "unseen"}
    monkeypatch.setattr(sample_data, "write_unseen", lambda *args: None)
    without = sample_data.generate(tmp_path / "without", seed=5, train_per_class=2, val_per_class=1)
    assert file_bytes(without) == splits


def test_a_sample_written_before_the_unseen_paintings_gets_them(tmp_path):
    root = sample_data.generate(tmp_path / "sample", seed=5, train_per_class=1, val_per_class=1)
    expected = sample_data.unseen_painting(root, "Monet").read_bytes()
    for path in (root / sample_data.UNSEEN_DIR).iterdir():
        path.unlink()

    assert sample_data.ensure_sample_data(root, seed=5) == root
    assert sample_data.unseen_painting(root, "Monet").read_bytes() == expected
