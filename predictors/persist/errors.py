"""The errors of saving and loading a model: ``PersistError`` and its two kinds,
``NotSavable`` (saving) and ``CheckpointError`` (loading)."""

from __future__ import annotations

__all__ = ["CheckpointError", "NotSavable", "PersistError"]


class PersistError(ValueError):
    """A model could not be saved or loaded; the message says which and why."""


class NotSavable(PersistError):
    """The model holds state that has no safe saved form."""


class CheckpointError(PersistError):
    """A checkpoint folder is missing files, corrupt, or does not match the class."""
