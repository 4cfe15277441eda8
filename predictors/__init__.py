"""Rating predictors: the protocol, the registry, and the models.

Nothing here imports ``bench`` (models know nothing of CLIs or files), and torch models are
imported only when one is asked for.
"""

from predictors.registry import available, create, describe, parse_spec

__all__ = ["available", "create", "describe", "parse_spec"]
