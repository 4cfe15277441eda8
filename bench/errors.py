"""Error classes of the harness: each message names the file, column or option at fault."""

from __future__ import annotations


class BenchError(Exception):
    """Base class: an expected, user-facing failure (the CLI prints it on one line)."""


class DataError(BenchError, ValueError):
    """A ratings, catalog or embedding file (or dataset) is missing or malformed."""


class ConfigError(BenchError, ValueError):
    """An option, model spec or protocol setting is invalid."""


class ResultsError(BenchError, ValueError):
    """A results file is unreadable, not ours, or not comparable."""
