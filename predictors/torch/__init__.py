"""Shared plumbing of the torch models, one job per module (import the module you need):

- ``predictors.torch.device``: the ``torch.device`` of a device name (resolved by
  ``predictors.device.resolve_device``) and seeded module initialisation;
- ``predictors.torch.batches``: array-backed history windows (``SeqBatch``, ``SequenceData``,
  ``history_batch``), gathered by tensor indexing;
- ``predictors.torch.trainer``: the shared training loop, its config and the size-dependent
  schedule;
- ``predictors.torch.adapter``: ``TorchSequencePredictor``, the predictor protocol over a
  history window, and the options the torch models share.

Modules import downwards only (adapter -> trainer -> batches -> device). Nothing outside the
torch models imports this package, so ``predictors.registry`` and the baselines never import
torch. Inside it, ``import torch`` is the torch library (absolute imports).
"""
