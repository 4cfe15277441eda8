"""The identity of one model run inside a results file: (model, embedding, seed).

A run of ``bench run`` is a plan of model runs, one per (model spec, embedding, seed). The
text form ``label[/embedding][@seed]`` names it in tables and in the predictions sidecar's
columns (``pred:<key>``); the embedding part appears only when the run has several
embeddings and the seed part only when the model ran on several seeds. Code never parses that
text: the results record the parts (``run_key``) and ``RunKey.from_record`` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["RunKey"]


@dataclass(frozen=True, order=True)
class RunKey:
    model: str  # the model's spec label, e.g. "recent-k:k=10"
    embedding: str | None = None  # set when the run compares several embeddings
    seed: int | None = None  # set when the model runs on several seeds

    def __str__(self) -> str:
        text = self.model
        if self.embedding is not None:
            text += f"/{self.embedding}"
        if self.seed is not None:
            text += f"@{self.seed}"
        return text

    @property
    def group(self) -> RunKey:
        """The key without the seed: every seed of one model on one embedding."""
        return RunKey(self.model, self.embedding, None)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "embedding": self.embedding, "seed": self.seed}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunKey:
        seed = d.get("seed")
        return cls(str(d["model"]), d.get("embedding"), None if seed is None else int(seed))

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> RunKey:
        """The key of a model record of a results file. Files written before keys were
        recorded (no ``run_key``) have the parts as fields: the label, the embedding (shown
        in the key when the group names it) and the seed (shown when the key ends with it)."""
        if isinstance(rec.get("run_key"), dict):
            return cls.from_dict(rec["run_key"])
        label = str(rec.get("label") or rec["key"])
        key, group = str(rec["key"]), str(rec.get("group") or rec["key"])
        emb = rec.get("embedding")
        shown_emb = emb if emb is not None and group == f"{label}/{emb}" else None
        seed = rec.get("seed")
        shown_seed = seed if seed is not None and key == f"{group}@{seed}" else None
        return cls(label, shown_emb, shown_seed)
