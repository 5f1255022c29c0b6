"""Three ways to keep decoded paintings on disk for later epochs, measured side by side.

    .venv/bin/python benchmarks/cache_formats.py [--sizes 2000 10000] [--image-size 160]

Once every painting is decoded and resized, later epochs should read the pixels from disk
rather than decode again. The candidates:

- ``npy``: one memory-mapped ``.npy`` array (what ``data_mode: disk`` uses), read through the
  project's own ``training.training_batches``: every epoch an exact permutation fixed by the
  seed and the epoch;
- ``tfrecord``: 16 TFRecord shards of raw pixels, read with ``interleave`` over shuffled
  shards and a 1,024-image shuffle buffer;
- ``snapshot``: ``tf.data.Dataset.snapshot`` (no compression) of the decoded stream, written
  during the first epoch, followed by a 1,024-image shuffle buffer.

Every format stores the same images: random uint8 pixels made chunk by chunk, so no format
holds the data set in memory while writing, and decoding (the same for all three) is left
out. Each format runs in its own process. Measured: the time to write the cache (for
``snapshot``, its first epoch, which writes it), the size on disk, the images/s of one epoch
read cold (the cache's pages dropped from the page cache with ``posix_fadvise``) and one read
warm, in batches of 32 through ``tf.data``, and the peak anonymous memory (``RssAnon``,
sampled every 20 ms), which leaves out pages of memory-mapped files.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

FORMATS = ("npy", "tfrecord", "snapshot")
NUM_CLASSES = 10
BATCH_SIZE = 32
CHUNK = 256
SHARDS = 16
SHUFFLE_BUFFER = 1024
SEED = 42


class PeakAnonymousMemory:
    """Samples this process's ``RssAnon`` in a background thread and keeps the peak."""

    def __init__(self) -> None:
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("RssAnon:"):
                        self.peak_kib = max(self.peak_kib, int(line.split()[1]))

    def stop(self) -> float:
        """Stop sampling; the peak in MiB."""
        self._stop.set()
        self._thread.join()
        return self.peak_kib / 1024


def chunks(count: int, image_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``count`` random images and labels, ``CHUNK`` at a time, the same on every call."""
    for start in range(0, count, CHUNK):
        rng = np.random.default_rng([SEED, start])
        size = min(CHUNK, count - start)
        images = rng.integers(0, 256, (size, image_size, image_size, 3), dtype=np.uint8)
        yield images, rng.integers(0, NUM_CLASSES, size)


def drop_from_page_cache(folder: Path) -> None:
    """Write every file under ``folder`` to disk and ask the kernel to forget its pages."""
    for path in folder.rglob("*"):
        if path.is_file():
            descriptor = os.open(path, os.O_RDONLY)
            try:
                os.fsync(descriptor)
                os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(descriptor)


def disk_bytes(folder: Path) -> int:
    """Bytes of every file under ``folder``."""
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def read_epoch(dataset) -> float:
    """Seconds to draw every batch of one pass over ``dataset``."""
    start = time.perf_counter()
    for _ in dataset:
        pass
    return time.perf_counter() - start


def npy_epochs(count: int, image_size: int, folder: Path) -> tuple[float, list]:
    """Write the ``.npy`` cache; the writing time and a dataset per later epoch."""
    from utils import training

    start = time.perf_counter()
    X = np.lib.format.open_memmap(
        folder / "X.npy", mode="w+", dtype=np.uint8, shape=(count, image_size, image_size, 3)
    )
    y = np.empty(count, dtype=np.int64)
    offset = 0
    for images, labels in chunks(count, image_size):
        X[offset : offset + len(images)] = images
        y[offset : offset + len(images)] = labels
        offset += len(images)
    X.flush()
    del X
    np.save(folder / "y.npy", y)
    seconds = time.perf_counter() - start
    X = np.load(folder / "X.npy", mmap_mode="r")
    epochs = [
        training.training_batches(X, y, NUM_CLASSES, BATCH_SIZE, epoch + 1, SEED, first_epoch=epoch)
        for epoch in (1, 2)
    ]
    return seconds, epochs


def tfrecord_epochs(count: int, image_size: int, folder: Path) -> tuple[float, list]:
    """Write the TFRecord shards; the writing time and a dataset per later epoch."""
    import tensorflow as tf

    start = time.perf_counter()
    shard_paths = [str(folder / f"shard-{index:02d}.tfrecord") for index in range(SHARDS)]
    writers = [tf.io.TFRecordWriter(path) for path in shard_paths]
    number = 0
    for images, labels in chunks(count, image_size):
        for image, label in zip(images, labels, strict=True):
            feature = {
                "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image.tobytes()])),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
            }
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writers[number % SHARDS].write(example.SerializeToString())
            number += 1
    for writer in writers:
        writer.close()
    seconds = time.perf_counter() - start

    spec = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
    }

    def parse(serialized):
        parsed = tf.io.parse_example(serialized, spec)
        images = tf.io.decode_raw(parsed["image"], tf.uint8)
        images = tf.reshape(images, (-1, image_size, image_size, 3))
        return images, tf.one_hot(parsed["label"], NUM_CLASSES)

    def epoch_dataset(epoch: int):
        return (
            tf.data.Dataset.from_tensor_slices(shard_paths)
            .shuffle(SHARDS, seed=SEED + epoch)
            .interleave(tf.data.TFRecordDataset, cycle_length=4, num_parallel_calls=4)
            .shuffle(SHUFFLE_BUFFER, seed=SEED + epoch)
            .batch(BATCH_SIZE)
            .map(parse, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(2)
        )

    return seconds, [epoch_dataset(epoch) for epoch in (1, 2)]


def snapshot_epochs(count: int, image_size: int, folder: Path) -> tuple[float, list]:
    """Write the snapshot during a first epoch; its time and a dataset per later epoch."""
    import tensorflow as tf

    def images():
        for chunk_images, chunk_labels in chunks(count, image_size):
            yield from zip(chunk_images, chunk_labels, strict=True)

    signature = (
        tf.TensorSpec((image_size, image_size, 3), tf.uint8),
        tf.TensorSpec((), tf.int64),
    )
    stream = tf.data.Dataset.from_generator(images, output_signature=signature).snapshot(
        str(folder / "snapshot"), compression=None
    )

    def epoch_dataset(epoch: int):
        return (
            stream.shuffle(SHUFFLE_BUFFER, seed=SEED + epoch)
            .batch(BATCH_SIZE)
            .map(lambda x, y: (x, tf.one_hot(y, NUM_CLASSES)), num_parallel_calls=4)
            .prefetch(2)
        )

    seconds = read_epoch(epoch_dataset(0))
    return seconds, [epoch_dataset(epoch) for epoch in (1, 2)]


def worker(cache_format: str, count: int, image_size: int) -> dict:
    """Measure one format at one size in this process."""
    memory = PeakAnonymousMemory()
    build = {"npy": npy_epochs, "tfrecord": tfrecord_epochs, "snapshot": snapshot_epochs}
    with tempfile.TemporaryDirectory(prefix=f"cache-{cache_format}-") as tmp:
        folder = Path(tmp)
        write_seconds, epochs = build[cache_format](count, image_size, folder)
        drop_from_page_cache(folder)
        cold_seconds = read_epoch(epochs[0])
        warm_seconds = read_epoch(epochs[1])
        size = disk_bytes(folder)
    return {
        "format": cache_format,
        "images": count,
        "image_size": image_size,
        "write_s": write_seconds,
        "disk_mib": size / 2**20,
        "cold_ips": count / cold_seconds,
        "warm_ips": count / warm_seconds,
        "peak_anon_mib": memory.stop(),
    }


def main() -> None:
    """Run every format at every size, each in a fresh process; print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--worker", choices=FORMATS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.sizes[0], args.image_size)))
        return
    rows = []
    for count in args.sizes:
        for cache_format in FORMATS:
            command = [sys.executable, __file__, "--worker", cache_format]
            command += ["--sizes", str(count), "--image-size", str(args.image_size)]
            env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2"}
            result = subprocess.run(command, capture_output=True, text=True, env=env)
            if result.returncode != 0:
                sys.exit(f"{cache_format} at {count} images failed:\n{result.stderr}")
            rows.append(json.loads(result.stdout.splitlines()[-1]))
            print(rows[-1], flush=True)
    print(f"\n{args.image_size} px images, batches of {BATCH_SIZE}, {os.cpu_count()} CPU cores\n")
    print("| images | format | write | on disk | epoch, cold | epoch, warm | peak RssAnon |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['images']:,} | {row['format']} | {row['write_s']:.1f} s "
            f"| {row['disk_mib']:,.0f} MiB | {row['cold_ips']:,.0f} images/s "
            f"| {row['warm_ips']:,.0f} images/s | {row['peak_anon_mib']:,.0f} MiB |"
        )


if __name__ == "__main__":
    main()
