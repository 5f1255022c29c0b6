"""Helpers for the cnn-artists notebook: one small module for each job.

Data flows one way: ``dataset`` finds files and classes, ``images`` turns files into
uint8 arrays, ``loading`` ties both to the ``cache``, ``models`` and ``training`` fit a
network, ``evaluation`` and ``plots`` judge it, and ``runs`` writes the results.
"""

import os

# The most pixels an image file may declare (50 megapixels: every painting in the Kaggle
# data is far below it). ``images.decode_rgb`` refuses larger ones from their headers;
# OpenCV's own limit, read once when cv2 is first imported, is a second line of defence.
MAX_PIXELS = 50_000_000
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_PIXELS))
