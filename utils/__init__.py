"""Helpers for the cnn-artists notebook: one small module for each job.

Data flows one way: ``dataset`` finds files and classes, ``images`` turns files into
uint8 arrays, ``loading`` ties both to the ``cache``, ``models`` and ``training`` fit a
network, ``evaluation`` and ``plots`` judge it, and ``runs`` writes the results.
"""
