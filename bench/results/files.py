"""The atomic-write helpers of results files, which live in ``bench.fileio`` (data,
embeddings and reports write through them too)."""

from __future__ import annotations

from bench.fileio import atomic_write, check_output_file, clean_stale_temps

__all__ = ["atomic_write", "check_output_file", "clean_stale_temps"]
