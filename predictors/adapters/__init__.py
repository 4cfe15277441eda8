"""Adapters: established libraries' models on the harness's split (``surprise:SVD``)."""
