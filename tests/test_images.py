"""Decoding by content, colour order, resizing, and the bad-input suite."""

import io
import os
import shutil
import struct
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import noise_image, solid, write_jpeg
from PIL import Image

from utils import images, loading

RED = (220, 20, 30)


def png_bytes(array: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", array)
    assert ok
    return data.tobytes()


def test_jpeg_loads_in_rgb_order(tmp_path):
    path = write_jpeg(tmp_path / "red.jpg", solid(RED))
    image, original = images.load_image(path, 16)
    assert image.shape == (16, 16, 3)
    assert image.dtype == np.uint8
    assert np.abs(image.reshape(-1, 3).mean(axis=0) - RED).max() < 6
    assert original == (40, 60)


def test_png_named_jpg_is_decoded_by_content(tmp_path):
    path = tmp_path / "quirk.jpg"
    path.write_bytes(png_bytes(cv2.cvtColor(solid(RED), cv2.COLOR_RGB2BGR)))
    image, original = images.load_image(path, 8)
    assert tuple(image[0, 0]) == RED
    assert original == (40, 60)


def test_grayscale_becomes_three_equal_channels(tmp_path):
    path = tmp_path / "gray.jpg"
    _, data = cv2.imencode(".jpg", np.full((30, 30), 128, dtype=np.uint8))
    path.write_bytes(data.tobytes())
    image, _ = images.load_image(path, 10)
    assert image.shape == (10, 10, 3)
    assert np.all(image[..., 0] == image[..., 1]) and np.all(image[..., 1] == image[..., 2])


def test_rgba_is_composited_on_white(tmp_path):
    bgra = np.zeros((20, 20, 4), dtype=np.uint8)
    bgra[..., 2] = 255  # red in BGR order
    bgra[:, :10, 3] = 255  # left half opaque, right half transparent
    path = tmp_path / "alpha.png"
    path.write_bytes(png_bytes(bgra))
    rgb = images.decode_rgb(path.read_bytes())
    assert tuple(rgb[5, 2]) == (255, 0, 0)
    assert tuple(rgb[5, 17]) == (255, 255, 255)


def test_gray_alpha_png_becomes_rgb(tmp_path):
    path = tmp_path / "la.png"
    Image.new("LA", (12, 12), (100, 255)).save(path)
    rgb = images.decode_rgb(path.read_bytes())
    assert rgb.shape == (12, 12, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 0]) == (100, 100, 100)


def test_16_bit_png_becomes_8_bit(tmp_path):
    bgr16 = np.zeros((10, 10, 3), dtype=np.uint16)
    bgr16[..., 0] = 65535  # blue at full 16-bit scale
    path = tmp_path / "deep.png"
    path.write_bytes(png_bytes(bgr16))
    rgb = images.decode_rgb(path.read_bytes())
    assert rgb.dtype == np.uint8
    assert tuple(rgb[0, 0]) == (0, 0, 255)


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("RGB", (24, 24), RED).convert("CMYK").save(path, "JPEG", quality=95)
    rgb = images.decode_rgb(path.read_bytes())
    assert rgb.shape == (24, 24, 3)
    assert np.abs(rgb.reshape(-1, 3).mean(axis=0) - RED).max() < 25


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"this is a text file, not a painting\n", "not an image"),
    ],
)
def test_unreadable_content_raises_with_reason(content, reason):
    with pytest.raises(images.UnreadableImageError, match=reason):
        images.decode_rgb(content)


def test_truncated_jpeg_is_refused(tmp_path):
    whole = write_jpeg(tmp_path / "whole.jpg", noise_image(1, 200, 200)).read_bytes()
    with pytest.raises(images.UnreadableImageError, match="truncated JPEG"):
        images.decode_rgb(whole[: len(whole) // 2])


def test_huge_declared_dimensions_are_refused_before_decoding():
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR"
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    data = header + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    data += png_chunk(b"IDAT", zlib.compress(b"")) + png_chunk(b"IEND", b"")
    with pytest.raises(images.UnreadableImageError, match="over the cap"):
        images.decode_rgb(data)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def rle_bmp_bomb(side: int = 30_000) -> bytes:
    """A 1 KB run-length-encoded BMP that declares side x side pixels."""
    palette = bytes(1024)
    pixels = b"\x00\x01"  # RLE8: end of bitmap
    offset = 14 + 40 + len(palette)
    return (
        b"BM"
        + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
        + struct.pack("<IiiHHIIiiII", 40, side, side, 1, 8, 1, len(pixels), 2835, 2835, 256, 0)
        + palette
        + pixels
    )


def jpeg_with_stray_byte(side: int = 8_000) -> bytes:
    """A JPEG whose frame declares side x side pixels, with a stray byte before that marker."""
    _, encoded = cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))
    data = bytearray(encoded.tobytes())
    frame = data.index(b"\xff\xc0")
    data[frame + 5 : frame + 9] = struct.pack(">HH", side, side)
    return bytes(data[:frame]) + b"\x00" + bytes(data[frame:])


@pytest.mark.parametrize(
    ("make", "declared"), [(rle_bmp_bomb, "30000x30000"), (jpeg_with_stray_byte, "8000x8000")]
)
def test_bombs_are_refused_from_their_headers(make, declared):
    with pytest.raises(images.UnreadableImageError, match=f"declares {declared} pixels"):
        images.decode_rgb(make())


def test_files_without_a_readable_size_are_refused():
    for data in (b"BM" + bytes(10), b"\xff\xd8\xff\xe0 garbage", b"plain text, not an image"):
        with pytest.raises(images.UnreadableImageError, match="no readable image size"):
            images.decode_rgb(data)


def peak_memory_mib_of_loading(path, load: str = "images.load_images([sys.argv[1]], 64)") -> float:
    """Peak memory growth of a fresh process that runs ``load`` on ``path`` (by default,
    loading one image as the loader does)."""
    code = (
        "import resource, sys\n"
        "from utils import images, loading\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"{load}\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    return float(result.stdout.strip())


def test_bombs_cost_no_more_memory_than_a_normal_painting(tmp_path):
    normal = write_jpeg(tmp_path / "normal.jpg", noise_image(5, 900, 1200))
    baseline = peak_memory_mib_of_loading(normal)
    for name, make in (("bomb.bmp", rle_bmp_bomb), ("stray.jpg", jpeg_with_stray_byte)):
        (tmp_path / name).write_bytes(make())
        assert peak_memory_mib_of_loading(tmp_path / name) < baseline + 200, name


def test_pixel_cap_applies_to_jpeg_headers(tmp_path):
    data = write_jpeg(tmp_path / "big.jpg", noise_image(2, 100, 100)).read_bytes()
    assert images.header_size(data) == (100, 100)
    with pytest.raises(images.UnreadableImageError, match="over the cap"):
        images.decode_rgb(data, max_pixels=5_000)


def test_reduced_jpeg_decoding_matches_full_decoding(tmp_path):
    smooth = cv2.resize(noise_image(3, 12, 16), (1600, 1200), interpolation=cv2.INTER_CUBIC)
    data = write_jpeg(tmp_path / "large.jpg", smooth, quality=95).read_bytes()
    reduced = images.resize(images.decode_rgb(data, min_side=64), 64)
    full = images.resize(images.decode_rgb(data), 64)
    assert images.decode_rgb(data, min_side=64).shape[:2] == (150, 200)  # decoded at 1/8 scale
    assert np.abs(reduced.astype(int) - full.astype(int)).mean() < 3


@pytest.mark.parametrize("mode", images.RESIZE_MODES)
@pytest.mark.parametrize("shape", [(30, 90), (90, 30), (500, 400), (10, 10)])
def test_resize_gives_the_square(mode, shape):
    assert images.resize(noise_image(4, *shape), 32, mode).shape == (32, 32, 3)


def test_crop_keeps_the_centre():
    wide = np.zeros((10, 30, 3), dtype=np.uint8)
    wide[:, 10:20] = 255  # the centre square is white, the sides black
    assert images.resize(wide, 10, "crop").min() == 255
    assert images.resize(wide, 10, "squash").min() == 0


def test_unknown_resize_mode_is_refused():
    with pytest.raises(ValueError, match="resize mode"):
        images.resize(noise_image(5), 8, "stretch")


def test_load_images_skips_and_names_bad_files(tmp_path):
    good = [write_jpeg(tmp_path / f"good{i}.jpg", solid((i * 40, 0, 0))) for i in range(3)]
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    missing = tmp_path / "vanished.jpg"
    files = [good[0], empty, good[1], text, missing, good[2]]

    loaded = images.load_images(files, 8, workers=2)

    assert loaded.X.shape == (3, 8, 8, 3)
    assert loaded.kept.tolist() == [0, 2, 5]
    assert [np.round(x[..., 0].mean() / 40) for x in loaded.X] == [0, 1, 2]
    assert [s.path for s in loaded.skipped] == [empty, text, missing]
    summary = images.format_skipped(loaded.skipped)
    assert summary.startswith("Skipped 3 unreadable file(s)")
    assert all(path.name in summary for path in (empty, text, missing))


def test_format_skipped_with_nothing_skipped():
    assert images.format_skipped([]) == "Skipped files: none."


def test_read_sizes_uses_headers_and_marks_unreadable(tmp_path):
    jpeg = write_jpeg(tmp_path / "a.jpg", noise_image(6, 33, 44))
    bmp = tmp_path / "b.bmp"
    _, data = cv2.imencode(".bmp", noise_image(7, 21, 12))
    bmp.write_bytes(data.tobytes())
    broken = tmp_path / "c.jpg"
    broken.write_bytes(b"junk")
    assert images.read_sizes([jpeg, bmp, broken]).tolist() == [[33, 44], [21, 12], [0, 0]]


def test_pillow_jpeg_with_exif_header_size(tmp_path):
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x010E] = "A painting"  # ImageDescription
    Image.new("RGB", (70, 50), RED).save(buffer, "JPEG", exif=exif)
    assert images.header_size(buffer.getvalue()) == (50, 70)


def test_real_png_named_jpg_in_the_subset(subset_dir: Path):
    path = subset_dir / "validation" / "validation" / "Hassam" / "244278.jpg"
    assert path.read_bytes()[:4] == b"\x89PNG"
    image, original = images.load_image(path, 64)
    assert image.shape == (64, 64, 3)
    assert original == (412, 512)


def test_first_readable_passes_over_unreadable_files(tmp_path):
    broken = tmp_path / "a.jpg"
    broken.write_bytes(b"not an image")
    good = write_jpeg(tmp_path / "b.jpg", noise_image(3, 30, 40))
    path, image = images.first_readable([broken, good])
    assert path == good and image.shape == (30, 40, 3)
    with pytest.raises(images.UnreadableImageError, match="none of the 1 files"):
        images.first_readable([broken])


def test_a_fifo_or_a_folder_is_refused_at_once_and_named(tmp_path):
    """Reading a FIFO used to wait for a writer forever (``make predict`` hung on one)."""
    fifo = tmp_path / "painting.jpg"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.jpg"
    folder.mkdir()
    good = write_jpeg(tmp_path / "good.jpg", solid((200, 30, 30)))
    with ThreadPoolExecutor(max_workers=1) as pool:
        loaded = pool.submit(images.load_images, [fifo, good, folder], 16).result(timeout=30)
    assert loaded.kept.tolist() == [1]
    assert [(item.path, item.reason) for item in loaded.skipped] == [
        (fifo, "not a regular file (a FIFO)"),
        (folder, "not a regular file (a folder)"),
    ]
    assert images.read_sizes([fifo, good]).tolist() == [[0, 0], [40, 60]]


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("kind", ["PNG", "WEBP"])
def test_exif_orientation_of_png_and_webp_is_applied_as_for_jpeg(kind, orientation):
    """OpenCV turns JPEGs upright but used to leave PNG and WebP as stored."""
    from PIL import ImageOps

    pixels = noise_image(orientation, height=6, width=10)
    image = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, kind, exif=exif.tobytes(), lossless=True)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(buffer.getvalue()))))
    decoded = images.decode_rgb(buffer.getvalue())
    np.testing.assert_array_equal(decoded, expected)
    assert decoded.shape[:2] == ((6, 10) if orientation < 5 else (10, 6))


def sixteen_bit_rgba_png(side: int = 7000) -> bytes:
    """A flat 16-bit RGBA PNG: a few hundred KB on disk, 8 bytes a pixel once decoded."""
    ok, encoded = cv2.imencode(".png", np.zeros((side, side, 4), np.uint16))
    assert ok
    return encoded.tobytes()


def test_memory_is_capped_by_decoded_bytes_not_by_pixels(tmp_path):
    """A 7000x7000 16-bit RGBA PNG is under the pixel cap, but decoding it used to take
    2.8 GB in make predict; its header now says it would take 735 MB, over the cap."""
    data = sixteen_bit_rgba_png()
    assert len(data) < 2_000_000
    assert images.decoding_bytes(data) == 7000 * 7000 * (4 * 2 + 4 + 3)
    with pytest.raises(images.UnreadableImageError, match="would take 735 MB to decode"):
        images.decode_rgb(data)
    small = sixteen_bit_rgba_png(300)
    assert images.decode_rgb(small).shape == (300, 300, 3)  # a small one still loads
    normal = write_jpeg(tmp_path / "normal.jpg", noise_image(5, 900, 1200))
    (tmp_path / "deep.png").write_bytes(data)
    baseline = peak_memory_mib_of_loading(normal)
    assert peak_memory_mib_of_loading(tmp_path / "deep.png") < baseline + 200


def test_the_threads_decode_no_more_than_the_budget_at_once():
    budget = images._ByteBudget(10)
    in_use, peak, guard = [0], [0], threading.Lock()

    def decode(amount):
        with budget.hold(amount):
            with guard:
                in_use[0] += amount
                peak[0] = max(peak[0], in_use[0])
            time.sleep(0.01)
            with guard:
                in_use[0] -= amount

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(decode, [6, 6, 3, 3, 3, 12, 1, 1]))
    assert peak[0] <= 12 and budget.used == 0  # 12 alone: more than the budget, held alone


def peak_memory_mib_of_loading_folder(folder: Path) -> float:
    """Peak memory growth of a fresh process that loads a data folder into arrays."""
    return peak_memory_mib_of_loading(
        folder, "loading.load_dataset(sys.argv[1], 64, use_cache=False)"
    )


def test_four_deep_pngs_in_a_training_folder_cost_under_500_mb_more(tmp_path):
    """The issue's goal for loading: four 7000x7000 16-bit RGBA PNGs took a folder's
    loading from 158 MB to 4.2 GB; now each is refused from its header."""
    plain = tmp_path / "plain"
    for artist in ("Monet", "Degas"):
        for index in range(8):
            write_jpeg(plain / artist / f"{index}.jpg", noise_image(index, 900, 1200))
    deep = tmp_path / "deep"
    shutil.copytree(plain, deep)
    data = sixteen_bit_rgba_png()
    for index in range(4):
        (deep / "Monet" / f"deep-{index}.png").write_bytes(data)
    assert peak_memory_mib_of_loading_folder(deep) < peak_memory_mib_of_loading_folder(plain) + 500
    skipped = loading.load_dataset(deep, 16, use_cache=False).skipped
    assert len(skipped) == 4 and all("735 MB" in item.reason for item in skipped)


def test_a_file_larger_than_the_decoding_cap_is_refused_unread(tmp_path, monkeypatch):
    """A file can only be read whole up to the decoding cap (#31: a link to /dev/zero or a
    huge file grew memory without end in ``make duplicates``)."""
    monkeypatch.setattr(images, "MAX_DECODED_BYTES", 1_000)
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff" * 1_001)
    with pytest.raises(images.UnreadableImageError, match="larger than 0 MB"):
        images.read_file(big)
    assert images.read_file(write_jpeg(tmp_path / "small.jpg", solid((1, 2, 3), 8, 8)))
