"""Import TensorFlow and Keras once, with TensorFlow's start-up chatter silenced at its source.

TensorFlow's C++ core prints log lines to file descriptor 2 before Python's logging is
set up, so they would land in every notebook as red noise; environment variables
cannot stop all of them. The import runs with descriptor 2 pointed at /dev/null.

``CNN_ARTISTS_CPU_DEVICES=N`` splits the processor into N logical devices before
TensorFlow starts using it, so that ``distribute: mirrored`` can be tried, and tested,
on a machine without GPUs. It does not make training faster.
"""

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


@contextlib.contextmanager
def silenced_stderr() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the duration of the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


with silenced_stderr():
    import keras
    import tensorflow as tf

    tf.config.list_physical_devices()
    _cpu_devices = int(os.environ.get("CNN_ARTISTS_CPU_DEVICES") or 0)
    if _cpu_devices > 1:
        tf.config.set_logical_device_configuration(
            tf.config.list_physical_devices("CPU")[0],
            [tf.config.LogicalDeviceConfiguration()] * _cpu_devices,
        )


class _NoRetracingWarning(logging.Filter):
    """Drops TensorFlow's "triggered tf.function retracing" warning. Every new model's first
    ``predict`` traces a function; a notebook that builds several networks (the comparison
    with ImageNet, the feature extractors) sets it off, though nothing is wrong. Other
    warnings still show."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


tf.get_logger().addFilter(_NoRetracingWarning())

__all__ = ["keras", "silenced_stderr", "tf"]
