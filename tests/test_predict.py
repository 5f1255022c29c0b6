"""Attributing new paintings: every accepted file kind, unreadable files, safe loading."""

import json
import os
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
from conftest import noise_image, write_jpeg
from PIL import Image

from utils import calibration, models, predict, runs, sample_data, similar
from utils.backend import keras

NAMES = ["Cezanne", "Degas", "Monet"]


def save_trained(run_dir, image_size=16, status=runs.FINISHED):
    run_dir.mkdir(parents=True, exist_ok=True)
    model = models.build_model("shallow", image_size, len(NAMES), filters=4)
    runs.save_model(model, run_dir / "model.keras")
    predict.write_model_info(run_dir, NAMES, image_size, "crop", "shallow", "")
    if status:
        runs.write_status(run_dir, status)
    return run_dir / "model.keras"


@pytest.fixture
def paintings(tmp_path):
    folder = tmp_path / "paintings"
    folder.mkdir()
    files = {"jpeg": write_jpeg(folder / "a.jpg", noise_image(1, 60, 90))}
    _, png = cv2.imencode(".png", noise_image(2))
    (folder / "b.png").write_bytes(png.tobytes())
    (folder / "png-named.jpg").write_bytes(png.tobytes())
    files["png"], files["png named .jpg"] = folder / "b.png", folder / "png-named.jpg"
    Image.fromarray(noise_image(3)[..., 0]).save(folder / "gray.png")
    Image.new("RGBA", (30, 20), (10, 200, 30, 128)).save(folder / "alpha.png")
    cv2.imwrite(str(folder / "deep.png"), (noise_image(4).astype(np.uint16) * 257))
    Image.new("RGB", (40, 40), (200, 10, 10)).convert("CMYK").save(folder / "cmyk.jpg")
    cv2.imwrite(str(folder / "c.bmp"), noise_image(5))
    for kind, name in (
        ("grayscale", "gray.png"),
        ("rgba", "alpha.png"),
        ("16-bit", "deep.png"),
        ("cmyk", "cmyk.jpg"),
        ("bmp", "c.bmp"),
    ):
        files[kind] = folder / name
    return files


def test_every_accepted_kind_gets_probabilities_and_bad_files_an_error(tmp_path, paintings):
    trained = predict.load_trained_model(save_trained(tmp_path / "run"))
    assert trained.class_names == NAMES and trained.image_size == 16
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not a whole jpeg")
    files = [*paintings.values(), broken]

    answers = predict.attribute(trained, files)

    assert [a.path for a in answers] == files
    for answer in answers[:-1]:
        assert answer.error is None
        assert answer.probabilities.shape == (3,)
        assert answer.probabilities.sum() == pytest.approx(1, abs=1e-5)
        top = answer.top(NAMES, 3)
        assert [p for _, p in top] == sorted((p for _, p in top), reverse=True)
        assert {name for name, _ in top} == set(NAMES)
    assert answers[-1].probabilities is None and "no readable image size" in answers[-1].error
    table = predict.format_table(answers, NAMES, k=2)
    assert "could not be read: no readable image size" in table
    assert table.count("%") == 2 * (len(files) - 1)


def test_command_line_uses_the_newest_model(tmp_path, paintings, monkeypatch, capsys):
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(tmp_path / "out"))
    older = save_trained(tmp_path / "out" / "older")
    newer = save_trained(tmp_path / "out" / "newer")
    past = time.time() - 3600
    os.utime(older, (past, past))
    assert predict.newest_model() == newer

    assert (
        predict.main([str(paintings["jpeg"]), str(tmp_path / "missing.jpg"), "--top-k", "2"]) == 0
    )
    printed = capsys.readouterr().out
    assert "newer/model.keras" in printed
    assert "missing.jpg" in printed and "could not be read" in printed
    assert "not proof of authorship" in printed
    assert "SYNTHETIC" in printed


def test_the_closest_training_paintings_are_listed_when_the_run_kept_them(
    tmp_path, paintings, capsys
):
    """With the run's embeddings.npz, each readable painting gets its closest training
    paintings, and one unlike all of them is said to resemble none."""
    model_path = save_trained(tmp_path / "run", image_size=32)
    known = [noise_image(seed, 32, 32) for seed in range(10, 16)]
    gallery = similar.build_gallery(
        [f"train/{i}.jpg" for i in range(6)], NAMES * 2, similar.embed(np.stack(known))
    )
    similar.save(model_path.parent / similar.GALLERY_FILE, gallery)
    write_jpeg(tmp_path / "copy.jpg", known[2], quality=100)
    squares = (np.indices((32, 32)).sum(axis=0) // 4 % 2 * 255).astype(np.uint8)
    write_jpeg(tmp_path / "checkerboard.jpg", np.repeat(squares[..., None], 3, axis=2))
    files = [tmp_path / "copy.jpg", tmp_path / "checkerboard.jpg", tmp_path / "missing.jpg"]

    assert predict.main([*map(str, files), "--model", str(model_path)]) == 0
    printed = capsys.readouterr().out
    copy_part, board_part = printed.split("copy.jpg\n")[1].split("checkerboard.jpg\n")
    assert "1. Monet" in copy_part and "train/2.jpg" in copy_part
    assert "resembles none" not in copy_part
    assert "resembles none of the paintings the model knows" in board_part
    assert printed.count("Closest training paintings") == 2  # none for the missing file


@pytest.mark.parametrize("status", [runs.FAILED, runs.RUNNING, None])
def test_the_default_model_is_never_from_an_unfinished_run(tmp_path, monkeypatch, status):
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(tmp_path / "out"))
    finished = save_trained(tmp_path / "out" / "finished")
    past = time.time() - 3600
    os.utime(finished, (past, past))
    save_trained(tmp_path / "out" / "newer-but-unfinished", status=status)
    assert predict.newest_model() == finished
    (finished.parent / runs.STATUS_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=r"2 model\(s\) there belong to runs that did not"):
        predict.newest_model()


def test_command_line_without_model_or_readable_paintings(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(tmp_path / "empty-out"))
    assert predict.main([str(tmp_path / "x.jpg")]) == 2
    assert "make run" in capsys.readouterr().err
    model_path = save_trained(tmp_path / "run")
    assert predict.main([str(tmp_path / "x.jpg"), "--model", str(model_path)]) == 1


def test_the_saved_temperature_scales_the_answers_and_an_older_model_says_it_has_none(
    tmp_path, paintings, capsys
):
    model_path = save_trained(tmp_path / "run")
    info_path = model_path.with_name(predict.MODEL_INFO)
    plain = predict.load_trained_model(model_path)
    assert (plain.temperature, plain.temperature_recorded) == (1.0, True)
    [as_given] = predict.attribute(plain, [paintings["jpeg"]])

    predict.write_model_info(model_path.parent, NAMES, 16, "crop", "shallow", "", 0.5)
    sharpened = predict.load_trained_model(model_path)
    [scaled] = predict.attribute(sharpened, [paintings["jpeg"]])
    expected = calibration.apply_temperature(as_given.probabilities[np.newaxis], 0.5)[0]
    np.testing.assert_allclose(scaled.probabilities, expected, rtol=1e-5)
    assert scaled.probabilities.argmax() == as_given.probabilities.argmax()
    assert "temperature 0.5, fitted" in sharpened.probabilities_note

    info = json.loads(info_path.read_text())
    del info["temperature"]
    info_path.write_text(json.dumps(info))
    older = predict.load_trained_model(model_path)
    assert (older.temperature, older.temperature_recorded) == (1.0, False)
    assert predict.main([str(paintings["jpeg"]), "--model", str(model_path)]) == 0
    assert "saved without one: uncalibrated" in capsys.readouterr().out


def test_missing_model_info_is_explained(tmp_path):
    model_path = save_trained(tmp_path / "run")
    (model_path.parent / predict.MODEL_INFO).unlink()
    with pytest.raises(FileNotFoundError, match="class list"):
        predict.load_trained_model(model_path)


def test_safe_mode_refuses_models_that_carry_code(tmp_path):
    inputs = keras.Input((4, 4, 3))
    outputs = keras.layers.Lambda(lambda x: x * 2)(inputs)
    run_dir = tmp_path / "unsafe"
    run_dir.mkdir()
    keras.Model(inputs, outputs).save(run_dir / "model.keras")
    predict.write_model_info(run_dir, NAMES, 4, "squash", "custom", "data/x")
    with pytest.raises(ValueError, match="safe_mode"):
        predict.load_trained_model(run_dir / "model.keras")


def test_class_index_and_example_painting(tmp_path):
    assert predict.class_index(NAMES, "Monet") == 2
    with pytest.raises(
        ValueError, match="'Renoir' is not one of the 3 artists: Cezanne, Degas, Monet"
    ):
        predict.class_index(NAMES, "Renoir")
    with pytest.raises(ValueError, match="did you mean 'Monet'"):
        predict.class_index(NAMES, "Monnet")
    with pytest.raises(ValueError, match="did you mean 'Degas'"):
        predict.class_index(NAMES, "degas")
    files = [tmp_path / f"{i}.jpg" for i in range(4)]
    labels = np.array([0, 2, 1, 2])
    assert predict.example_painting(files, labels, NAMES, "Monet") == files[1]
    assert predict.example_painting(files, np.array([0, 0, 1, 1]), NAMES, "Monet") == files[0]


def test_the_chapters_painting_is_the_users_the_samples_unseen_one_or_a_stand_in(tmp_path):
    files = [tmp_path / f"{i}.jpg" for i in range(4)]
    labels = np.array([0, 2, 1, 2])
    mine = tmp_path / "attic.png"
    chosen = predict.painting_to_attribute(str(mine), "Monet", tmp_path, files, labels, NAMES)
    assert chosen == mine
    chosen = predict.painting_to_attribute("", "Monet", tmp_path, files, labels, NAMES)
    assert chosen == sample_data.unseen_painting(tmp_path, "Monet")
    assert predict.painting_to_attribute("", "Monet", None, files, labels, NAMES) == files[1]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda run: (run / "model.keras").write_bytes(b"PK\x03\x04 truncated"), "not a usable"),
        (lambda run: (run / "model.keras").write_bytes(b""), "not a usable"),
        (lambda run: (run / "model.keras").write_text("hello"), "is not a usable Keras model: a"),
        (lambda run: (run / predict.MODEL_INFO).write_text("{not json"), "not readable JSON"),
        (lambda run: (run / predict.MODEL_INFO).write_text("[1, 2]"), "lacks a valid"),
        (
            lambda run: (run / predict.MODEL_INFO).write_text('{"class_names": "Monet"}'),
            "class_names, image_size, resize_mode",
        ),
        (
            lambda run: predict.write_model_info(run, NAMES, 100000, "crop", "shallow", ""),
            "image_size must lie between 8 and 1024",
        ),
        (
            lambda run: predict.write_model_info(run, NAMES, -5, "crop", "shallow", ""),
            "image_size must lie between 8 and 1024",
        ),
        (
            lambda run: predict.write_model_info(run, NAMES, 16, "bogus", "shallow", ""),
            "resize_mode must be one of squash, crop",
        ),
        (
            lambda run: predict.write_model_info(run, NAMES, 16, "crop", "shallow", "", 0.0),
            "temperature must lie between 0.05 and 20.0",
        ),
        (
            lambda run: predict.write_model_info(run, NAMES, 16, "crop", "shallow", "", True),
            "temperature must lie between",
        ),
        (
            lambda run: predict.write_model_info(run, [1, 2, 3], 16, "crop", "shallow", ""),
            "class_names must be a list of artists' names",
        ),
        (
            lambda run: predict.write_model_info(run, NAMES[:2], 16, "crop", "shallow", ""),
            "lists 2 artists, but the model has 3 outputs",
        ),
    ],
)
def test_damaged_model_files_are_explained_in_one_line(tmp_path, capsys, damage, message):
    model_path = save_trained(tmp_path / "run")
    damage(tmp_path / "run")
    with pytest.raises(predict.ModelFileError, match=message):
        predict.load_trained_model(model_path)
    assert predict.main([str(tmp_path / "x.jpg"), "--model", str(model_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert message.split(",")[0] in error and "\n" not in error
    assert "File not found" not in error, "the file is there"


def test_a_fifo_among_the_paintings_is_named_not_waited_on(tmp_path, paintings, capsys):
    model_path = save_trained(tmp_path / "run")
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    arguments = [str(fifo), str(paintings["jpeg"]), "--model", str(model_path)]
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(predict.main, arguments).result(timeout=60) == 0
    printed = capsys.readouterr().out
    assert "pipe.jpg" in printed and "not a regular file (a FIFO)" in printed


def test_the_painting_and_the_claimed_artist_are_checked_before_any_training(tmp_path):
    """A typo in ``suspected_artist`` or a ``painting`` that is no file used to surface only
    after the whole training; the notebook checks both as soon as it knows the artists."""
    painting = write_jpeg(tmp_path / "canvas.jpg", noise_image(1))
    predict.check_request(str(painting), "Monet", NAMES)
    predict.check_request("", "Monet", NAMES)  # no file named: the notebook picks one
    with pytest.raises(ValueError, match="did you mean 'Monet'"):
        predict.check_request("", "Monte", NAMES)
    with pytest.raises(ValueError, match=r"painting .*missing\.jpg does not exist"):
        predict.check_request(str(tmp_path / "missing.jpg"), "Monet", NAMES)
    with pytest.raises(ValueError, match="is a folder, not an image file"):
        predict.check_request(str(tmp_path), "Monet", NAMES)
    fifo = tmp_path / "canvas-pipe.jpg"
    os.mkfifo(fifo)  # once waited for a writer, or failed only after every epoch
    with pytest.raises(
        ValueError, match=r"canvas-pipe\.jpg cannot be read: not a regular file \(a FIFO\)"
    ):
        predict.check_request(str(fifo), "Monet", NAMES)
    damaged = tmp_path / "damaged.jpg"
    damaged.write_bytes(painting.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"damaged\.jpg cannot be read"):
        predict.check_request(str(damaged), "Monet", NAMES)


def test_a_symlink_loop_is_named_and_the_other_paintings_are_still_ranked(tmp_path, capsys):
    """#31: a loop among the paintings gave ``RuntimeError: Symlink loop`` and no table."""
    model_path = save_trained(tmp_path / "run")
    real = write_jpeg(tmp_path / "real.jpg", noise_image(3))
    (tmp_path / "loop_a.jpg").symlink_to(tmp_path / "loop_b.jpg")
    (tmp_path / "loop_b.jpg").symlink_to(tmp_path / "loop_a.jpg")
    files = [str(tmp_path / "loop_a.jpg"), str(real)]
    assert predict.main([*files, "--model", str(model_path)]) == 0
    printed = capsys.readouterr().out
    assert "loop_a.jpg" in printed and "Too many levels of symbolic links" in printed
    ranked = [line for line in printed.splitlines() if "real.jpg" in line and "%" in line]
    assert len(ranked) == 1


def _gallery_arrays(count: int = 6) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(count, similar.FEATURES)).astype(np.float32)
    return {
        "paintings": np.array([f"train/{i}.jpg" for i in range(count)]),
        "artists": np.array((NAMES * count)[:count]),
        "embeddings": features / np.linalg.norm(features, axis=1, keepdims=True),
    }


DAMAGED_GALLERIES = {
    "features of the wrong width": {"embeddings": np.zeros((6, 7), dtype=np.float32)},
    "fewer artists than paintings": {"artists": np.array(NAMES[:2])},
    "a missing array": {"artists": None},
    "an object array": {"paintings": np.array([{"a": 1}] * 6, dtype=object)},
    "features that are not numbers": {"embeddings": np.full((6, 1280), np.nan, np.float32)},
    "features that are text": {"embeddings": np.array(["x"] * 6)},
}


@pytest.mark.parametrize("damage", list(DAMAGED_GALLERIES))
def test_a_damaged_gallery_still_ranks_and_says_why_in_one_line(tmp_path, capsys, damage):
    """#31: six kinds of damaged ``embeddings.npz`` printed the ranking, then a traceback."""
    model_path = save_trained(tmp_path / "run")
    arrays = _gallery_arrays() | DAMAGED_GALLERIES[damage]
    kept = {name: value for name, value in arrays.items() if value is not None}
    with open(model_path.parent / similar.GALLERY_FILE, "wb") as handle:
        np.savez(handle, **kept)  # object arrays are pickled here; the reader refuses them
    painting = write_jpeg(tmp_path / "canvas.jpg", noise_image(4))
    assert predict.main([str(painting), "--model", str(model_path)]) == 0
    printed = capsys.readouterr().out
    assert "Rank" in printed and "canvas.jpg" in printed
    last = printed.strip().splitlines()[-1]
    assert last.startswith("The closest training paintings cannot be shown:")
    assert "embeddings.npz" in last


def test_a_gallery_that_would_inflate_in_memory_is_refused_before_loading(tmp_path):
    """#31: a deflate bomb in ``embeddings.npz`` was loaded whole. ``save`` never compresses,
    and no array may declare more bytes than its member holds."""
    arrays = _gallery_arrays()
    bomb = tmp_path / "bomb.npz"
    np.savez_compressed(bomb, **arrays)
    with pytest.raises(similar.GalleryError, match="compressed; galleries never are"):
        similar.load(bomb)
    lying = tmp_path / "lying.npz"
    np.savez(lying, **arrays)
    data = bytearray(lying.read_bytes())
    header = b"'shape': (6, 1280)"
    at = data.index(header)
    data[at : at + len(header)] = b"'shape': (999999,)"  # as long: 4 MB declared in 30 KB
    lying.write_bytes(bytes(data))
    with pytest.raises(similar.GalleryError) as refused:
        similar.load(lying)
    assert "\n" not in str(refused.value)


def test_model_information_nested_too_deeply_is_refused_in_one_line(tmp_path):
    """#31: a 200,000-deep ``model_info.json`` gave RecursionError."""
    model_path = save_trained(tmp_path / "run")
    (model_path.parent / "model_info.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(predict.ModelFileError, match="nested too deeply"):
        predict.load_trained_model(model_path)


def test_a_model_archive_that_would_inflate_is_refused_before_keras_reads_it(tmp_path):
    """#31: a 4.7 MB model.keras whose config.json was padded with 1.5 GB of spaces made
    ``make predict`` peak at 3.9 GB. The members' sizes are checked first."""

    model_path = save_trained(tmp_path / "run")
    padded = tmp_path / "padded.keras"
    with zipfile.ZipFile(model_path) as source, zipfile.ZipFile(padded, "w") as target:
        for member in source.infolist():
            data = source.read(member)
            if member.filename == "config.json":
                data = data[:-1] + b" " * 30_000_000 + data[-1:]
            target.writestr(member.filename, data, compress_type=zipfile.ZIP_DEFLATED)
    assert padded.stat().st_size < 1_000_000
    padded_model = padded.parent / "run2" / "model.keras"
    padded_model.parent.mkdir()
    padded.rename(padded_model)
    (padded_model.parent / predict.MODEL_INFO).write_bytes(
        (model_path.parent / predict.MODEL_INFO).read_bytes()
    )
    with pytest.raises(predict.ModelFileError, match=r"config\.json would take 30 MB") as refused:
        predict.load_trained_model(padded_model)
    assert "\n" not in str(refused.value)
