"""Decode image files by content into 8-bit RGB arrays of one square size.

Knows nothing of classes or models. OpenCV releases the GIL while it decodes and
resizes, so a thread pool loads images in parallel.
"""

import contextlib
import io
import os
import stat
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from utils import MAX_PIXELS, paths
from utils.choices import RESIZE_MODES

DEFAULT_MAX_PIXELS = MAX_PIXELS
# The most memory one image may take to decode (its pixels at their stored depth, their 8-bit
# copy and the RGB result), read from its header: a 50-megapixel 8-bit RGB painting fits, a
# 49-megapixel 16-bit RGBA PNG (735 MB) does not. Also what the loader's threads may decode
# at once, together.
MAX_DECODED_BYTES = 500_000_000
# Rows of an RGBA image composited on white at a time.
_ROWS_AT_A_TIME = 512
_REDUCED_JPEG_FLAGS = (
    (8, cv2.IMREAD_REDUCED_COLOR_8),
    (4, cv2.IMREAD_REDUCED_COLOR_4),
    (2, cv2.IMREAD_REDUCED_COLOR_2),
)
# The pixel cap is ours (checked from the header, before decoding); Pillow's own
# decompression-bomb check would stop it from even reporting a huge declared size.
Image.MAX_IMAGE_PIXELS = None


class UnreadableImageError(ValueError):
    """A file that cannot be decoded into an image; the message says why."""


@dataclass(frozen=True)
class Skipped:
    """A file that was left out, and why."""

    path: Path
    reason: str


@dataclass(frozen=True)
class LoadedImages:
    """Images stacked into ``X`` (uint8, N x size x size x 3).

    ``kept`` holds the index, in the input list, of each row of ``X``;
    ``original_sizes`` holds each kept image's (height, width) before resizing.
    """

    X: np.ndarray
    kept: np.ndarray
    original_sizes: np.ndarray
    skipped: list[Skipped]


_ORIENTATION_TAG = 0x0112


def _read_header(data: bytes) -> tuple[int, int, int] | None:
    """(height, width, bytes to decode) from the file's header, read once by Pillow without
    decoding any pixel; None when no size can be read (not an image, or an unknown format).

    The bytes are the most memory decoding into 8-bit RGB takes: the decoded pixels at their
    stored depth (a 16-bit RGBA PNG is eight bytes a pixel, though Pillow calls its mode
    ``RGBA``), their 8-bit copy and the RGB result.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            bands = len(image.getbands())
            depth = {"I;16": 2, "I;16B": 2, "I;16L": 2, "I": 4, "F": 4}.get(image.mode, 1)
            args = image.tile[0].args if image.tile else ""
            rawmode = args if isinstance(args, str) else next(iter(args or ()), "")
            if isinstance(rawmode, str) and ";16" in rawmode:
                depth = max(depth, 2)
    except Exception:  # hostile headers raise many kinds of errors; all mean "no size"
        return None
    if data[:3] == b"\xff\xd8\xff":  # OpenCV decodes a JPEG to BGR, then converts it
        return height, width, height * width * 6
    return height, width, height * width * (bands * depth + bands + 3)


def header_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) declared in the file's header, without decoding any pixel; None when
    no size can be read (not an image, or an unknown format)."""
    header = _read_header(data)
    return header[:2] if header else None


def decoding_bytes(data: bytes) -> int | None:
    """The most memory decoding ``data`` into 8-bit RGB takes, from its header
    (``_read_header``); None when the header says nothing usable."""
    header = _read_header(data)
    return header[2] if header else None


class _ByteBudget:
    """At most ``limit`` bytes being decoded at once, over every thread of the process, so
    the loader's peak does not grow with the number of cores."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0
        self.changed = threading.Condition()

    @contextlib.contextmanager
    def hold(self, amount: int) -> Iterator[None]:
        """Wait until ``amount`` bytes fit in the budget, and hold them for the block."""
        amount = min(amount, self.limit)
        with self.changed:
            self.changed.wait_for(lambda: self.used + amount <= self.limit)
            self.used += amount
        try:
            yield
        finally:
            with self.changed:
                self.used -= amount
                self.changed.notify_all()


_DECODING = _ByteBudget(MAX_DECODED_BYTES)


def _to_rgb8(image: np.ndarray) -> np.ndarray:
    """Turn any OpenCV decode (gray, gray+alpha, BGR, BGRA; 8/16-bit or float) into RGB uint8."""
    if image.dtype == np.uint16:
        image = np.right_shift(image, 8, out=image).astype(np.uint8)  # no 16-bit copy
    elif image.dtype != np.uint8:
        image = (np.clip(image.astype(np.float32), 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    channels = image.shape[2]
    if channels == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2RGB)
    if channels == 2:
        image = cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR), image[:, :, 1]
        image = np.dstack(image)
        channels = 4
    if channels == 4:  # composited on white a band of rows at a time: no float32 copy whole
        rgb = np.empty((*image.shape[:2], 3), dtype=np.uint8)
        for top in range(0, image.shape[0], _ROWS_AT_A_TIME):
            rows = image[top : top + _ROWS_AT_A_TIME]
            alpha = rows[:, :, 3:4].astype(np.float32) / 255.0
            on_white = rows[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
            rgb[top : top + _ROWS_AT_A_TIME] = cv2.cvtColor(
                (on_white + 0.5).astype(np.uint8), cv2.COLOR_BGR2RGB
            )
        return rgb
    return cv2.cvtColor(image[:, :, :3], cv2.COLOR_BGR2RGB)


def decode_rgb(data: bytes, min_side: int = 0, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode image bytes by content (never by file name) into an RGB uint8 array.

    JPEGs at least ``8 * min_side`` (or 4x, 2x) on their short side are decoded at
    reduced scale, which is much faster and loses nothing once resized to ``min_side``.
    Raises ``UnreadableImageError`` for empty, truncated, oversized or undecodable data.
    """
    return _decode_with_size(data, min_side, max_pixels)[0]


def _decode_with_size(
    data: bytes, min_side: int, max_pixels: int
) -> tuple[np.ndarray, tuple[int, int]]:
    """``decode_rgb``, also returning the (height, width) the header declares."""
    if not data:
        raise UnreadableImageError("empty file (0 bytes)")
    header = _read_header(data)
    if header is None:
        raise UnreadableImageError("no readable image size in its header (not an image?)")
    declared, needed = header[:2], header[2]
    if declared[0] * declared[1] > max_pixels:
        raise UnreadableImageError(
            f"declares {declared[1]}x{declared[0]} pixels, over the cap of {max_pixels:,}"
        )
    if needed > MAX_DECODED_BYTES:
        raise UnreadableImageError(
            f"would take {needed / 1e6:,.0f} MB to decode ({declared[1]}x{declared[0]} pixels at "
            f"its bit depth and channels), over the cap of {MAX_DECODED_BYTES / 1e6:,.0f} MB"
        )
    with _DECODING.hold(needed):
        return _decode(data, declared, min_side, max_pixels)


def _decode(
    data: bytes, declared: tuple[int, int], min_side: int, max_pixels: int
) -> tuple[np.ndarray, tuple[int, int]]:
    buffer = np.frombuffer(data, dtype=np.uint8)
    if data[:3] == b"\xff\xd8\xff":
        # A JPEG that stops before its end-of-image marker decodes as a grey-padded image.
        if b"\xff\xd9" not in data[-1024:]:
            raise UnreadableImageError("truncated JPEG (no end-of-image marker)")
        flag = cv2.IMREAD_COLOR
        if min_side:
            short_side = min(declared)
            flag = next((f for n, f in _REDUCED_JPEG_FLAGS if short_side // n >= min_side), flag)
        bgr = cv2.imdecode(buffer, flag)
        if bgr is None:
            raise UnreadableImageError("corrupt JPEG data")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), declared
    image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise UnreadableImageError("not an image format OpenCV can decode")
    if image.shape[0] * image.shape[1] > max_pixels:
        raise UnreadableImageError(
            f"has {image.shape[1]}x{image.shape[0]} pixels, over the cap of {max_pixels:,}"
        )
    return _apply_orientation(_to_rgb8(image), _exif_orientation(data)), declared


def _exif_orientation(data: bytes) -> int:
    """The EXIF orientation (1 to 8) of a PNG or WebP, 1 when it has none.

    OpenCV turns JPEGs upright itself, but not PNG or WebP. Pillow reads the tag only when
    the file has an EXIF chunk (``eXIf`` in PNG, ``EXIF`` in WebP), so that other files are
    not parsed twice.
    """
    if b"eXIf" not in data and b"EXIF" not in data[:4096]:
        return 1
    try:
        with Image.open(io.BytesIO(data)) as image:
            orientation = image.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # a damaged EXIF block leaves the pixels as they are
        return 1
    return orientation if orientation in range(1, 9) else 1


def _apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """``image`` turned as EXIF ``orientation`` asks, as Pillow's ``exif_transpose`` does."""
    turned = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, k=-1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, k=1),
    }
    return np.ascontiguousarray(turned[orientation](image)) if orientation in turned else image


def resize(image: np.ndarray, image_size: int, mode: str = "squash") -> np.ndarray:
    """Resize to ``image_size`` x ``image_size``.

    ``"squash"`` stretches the whole painting to a square; ``"crop"`` keeps the aspect
    ratio, scales the short side to ``image_size`` and keeps the centre square.
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {mode!r}")
    height, width = image.shape[:2]
    if mode == "crop":
        scale = image_size / min(height, width)
        new_width = max(image_size, round(width * scale))
        new_height = max(image_size, round(height * scale))
    else:
        new_width = new_height = image_size
    shrinking = new_width * new_height < width * height
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_width, new_height), interpolation=interpolation)
    top = (new_height - image_size) // 2
    left = (new_width - image_size) // 2
    return np.ascontiguousarray(resized[top : top + image_size, left : left + image_size])


_FILE_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFDIR: "a folder",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def read_file(path: Path) -> bytes:
    """The bytes of a regular file; anything else is refused with what it is.

    The file is opened without blocking and checked before a byte is read: reading a FIFO
    would wait for a writer forever, and a device might never end. A file larger than the
    decoding cap (``MAX_DECODED_BYTES``) is refused unread, and no more than that is ever read.
    """
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            kind = _FILE_KINDS.get(stat.S_IFMT(status.st_mode), "not a file")
            raise UnreadableImageError(f"not a regular file ({kind})")
        too_large = UnreadableImageError(
            f"larger than {MAX_DECODED_BYTES // 1_000_000} MB, more than any image is decoded from"
        )
        if status.st_size > MAX_DECODED_BYTES:
            raise too_large
        os.set_blocking(descriptor, True)
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            data = handle.read(MAX_DECODED_BYTES + 1)
        if len(data) > MAX_DECODED_BYTES:  # it grew while being read
            raise too_large
        return data
    finally:
        os.close(descriptor)


def load_image(
    path: Path, image_size: int, mode: str = "squash", max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, tuple[int, int]]:
    """Load one file as a square RGB uint8 array, with its original (height, width)."""
    image, original = _decode_with_size(read_file(path), image_size, max_pixels)
    return resize(image, image_size, mode), (int(original[0]), int(original[1]))


def first_readable(paths: Sequence[Path]) -> tuple[Path, np.ndarray]:
    """The first file in ``paths`` that decodes, and its RGB pixels at full size.

    Raises ``UnreadableImageError`` when none does.
    """
    for path in paths:
        try:
            return Path(path), decode_rgb(read_file(path))
        except (UnreadableImageError, OSError, cv2.error):
            continue
    raise UnreadableImageError(f"none of the {len(paths)} files could be read")


def load_images(
    paths: Sequence[Path],
    image_size: int,
    mode: str = "squash",
    workers: int | None = None,
    progress: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    out: np.ndarray | None = None,
) -> LoadedImages:
    """Load many files in parallel; unreadable ones are skipped and listed, never fatal.

    The images go into ``out`` when given (one row per path, a memory-mapped file say),
    else into a new array. Rows of skipped files are closed up in place, so the result
    is the first ``len(kept)`` rows of that array, never a copy.
    """
    count = len(paths)
    X = np.empty((count, image_size, image_size, 3), dtype=np.uint8) if out is None else out
    original_sizes = np.zeros((count, 2), dtype=np.int64)
    reasons: dict[int, str] = {}

    def load_into(index: int) -> None:
        try:
            X[index], original_sizes[index] = load_image(paths[index], image_size, mode, max_pixels)
        except (UnreadableImageError, OSError, cv2.error) as error:
            reasons[index] = str(error).strip().splitlines()[0] if str(error) else repr(error)

    with (
        ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool,
        tqdm(total=count, desc="Loading images", unit="img", disable=not progress) as bar,
    ):
        for _ in pool.map(load_into, range(count)):
            bar.update()
    kept = np.array([i for i in range(count) if i not in reasons], dtype=np.int64)
    for row, index in enumerate(kept.tolist()):
        if row != index:  # rows only move up, so none is overwritten before it moves
            X[row] = X[index]
            original_sizes[row] = original_sizes[index]
    X, original_sizes = X[: len(kept)], original_sizes[: len(kept)]
    skipped = [Skipped(Path(paths[i]), reasons[i]) for i in sorted(reasons)]
    return LoadedImages(X, kept, original_sizes, skipped)


def read_sizes(paths: Sequence[Path]) -> np.ndarray:
    """Original (height, width) of each file, from its header without decoding.

    Files with no readable size (which the loader refuses too) get (0, 0).
    """
    sizes = np.zeros((len(paths), 2), dtype=np.int64)
    for index, path in enumerate(paths):
        try:
            sizes[index] = header_size(read_file(path)) or (0, 0)
        except (UnreadableImageError, OSError):
            continue
    return sizes


def format_skipped(skipped: Sequence[Skipped]) -> str:
    """A readable summary of skipped files: their count, then one line per file."""
    if not skipped:
        return "Skipped files: none."
    lines = [f"Skipped {len(skipped)} unreadable file(s):"]
    lines += [f"  {paths.display(item.path)}: {item.reason}" for item in skipped]
    return "\n".join(lines)
