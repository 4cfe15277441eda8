"""Reports from a results file: PNG figures plus a Markdown page (``report.md``) embedding them.

``write_report`` reads one results JSON (and its predictions sidecar when present) and writes a
folder with:

- ``forest.png``: every metric of ``bench.stats.METRIC_TABLE`` per model with 95% bootstrap
  CIs (sorted by the first, RMSE), and the paired difference to the reference model with its
  CI and verdict;
- ``learning-curves[-N].png``: per epoch-trained model, train loss and the validation
  metrics, best epoch marked, the seeds of one model overlaid in one panel;
- ``pred-vs-actual.png`` and ``error-hist.png``: jittered predicted-vs-actual scatter with the
  mean prediction per actual rating, and error histograms on shared bins;
- ``buckets.png``: RMSE by history length and by the target movie's training popularity,
  absolute and as the paired difference to the reference;
- ``ablation.png``: model x embedding RMSE heat-map, when run keys name an embedding;
- the main table (``bench.compare``), per-bucket tables, prediction examples with titles,
  and a "what's missing" section.

Modules: ``context`` (the results read once, the data reloaded), ``style`` (colours, sizes,
``Plot``), one per figure family (``forest``, ``curves``, ``panels``, ``buckets``,
``ablation``), and ``markdown`` (the page and the folder).

Decisions:

- Figures are built on ``matplotlib.figure.Figure`` objects rendered by the Agg canvas, never
  through ``pyplot``: headless by construction, no global figure state to leak, and importing
  this package does not switch the backend of a notebook that imports it.
- Every figure function returns a ``Plot``: the figure and a frame of the values it draws,
  so that what a figure shows is checked on numbers, not on PNG bytes.
- Models are identified by their ``RunKey`` (``RunKey.from_record``), never by parsing key
  text. One colour per seed group (``RunKey.group``), assigned in the order the models appear
  in the results file (``model_colors``): the same model has the same colour in every figure;
  seeds of one model share it (lighter shades when overlaid).
- History length and popularity need the data: it is reloaded from ``run_spec.source`` (never
  downloaded here), the dataset and split hashes are checked against the results, and any
  failure becomes a note in the report, never an exception.
- Per-bucket CIs use ``bench.stats`` percentile bootstraps with ``BUCKET_RESAMPLES`` resamples:
  enough for a figure, a small cost next to the run.
- The report folder is built in a temp folder beside the destination and renamed into place;
  an existing folder is never overwritten (the report goes to ``NAME-2``, ``NAME-3``...).
"""

from __future__ import annotations

from bench.report.buckets import BUCKET_RESAMPLES
from bench.report.forest import compare_figure, compare_plot
from bench.report.markdown import write_report
from bench.report.style import Plot, model_colors

__all__ = [
    "BUCKET_RESAMPLES",
    "Plot",
    "compare_figure",
    "compare_plot",
    "model_colors",
    "write_report",
]
