"""The one place a device name is checked and resolved; torch is imported only to answer.

``resolve_device(name) -> str`` accepts ``auto | cpu | cuda | cuda:N | mps`` (any case,
surrounding blanks ignored) and returns the concrete name: ``"cpu"``, ``"cuda"``,
``"cuda:1"`` or ``"mps"``. The harness calls it once per run; the torch models get their
``torch.device`` from it (``predictors.torch.device.torch_device``).

``"auto"`` picks cuda, then mps, then cpu, which needs torch. While torch is not imported
``"auto"`` stays ``"auto"``: a run whose models do not declare torch must not import it just
to name a device nobody reads (``bench --models bias`` stays torch-free). The harness
imports torch before resolving when some model declares ``Capabilities(torch=True)``, and a
torch model resolves the name again after importing torch, so every torch model trains on a
concrete device. ``"cpu"`` never imports torch; ``"cuda"``/``"mps"`` import it to check that
the backend is there.
"""

from __future__ import annotations

import sys

__all__ = ["DEVICES", "resolve_device"]

DEVICES = ("auto", "cpu", "cuda", "mps")  # plus "cuda:N" for GPU N
_KNOWN = "auto, cpu, cuda, mps, or cuda:N for GPU N"


def resolve_device(name: str) -> str:
    """The concrete device for ``name`` (see the module docstring).

    Raises ValueError for an unknown name (listing the accepted ones), and for a backend that
    is not available here (``cuda`` without CUDA, ``cuda:N`` beyond the GPUs present, ``mps``
    without MPS, or either without torch installed)."""
    if not isinstance(name, str):
        raise ValueError(f"unknown device {name!r}; known: {_KNOWN}")
    low = name.strip().lower()
    kind, colon, index = low.partition(":")
    if kind not in DEVICES or (colon and (kind != "cuda" or not index.isdigit())):
        raise ValueError(f"unknown device '{name}'; known: {_KNOWN}")
    if kind == "cpu":
        return "cpu"
    if kind == "auto" and "torch" not in sys.modules:
        return "auto"  # see the module docstring: resolved once torch is imported
    try:
        import torch
    except ImportError as e:  # pragma: no cover - torch is a dependency of the torch models
        raise ValueError(f"device '{name}' requested but torch is not installed") from e
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps is not None and mps.is_available())
    if kind == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if mps_ok else "cpu"
    if kind == "mps":
        if not mps_ok:
            raise ValueError("device 'mps' requested but MPS is not available (use auto or cpu)")
        return "mps"
    if not torch.cuda.is_available():
        raise ValueError(f"device '{low}' requested but CUDA is not available (use auto or cpu)")
    if colon and int(index) >= torch.cuda.device_count():
        raise ValueError(
            f"device '{low}' requested but CUDA is not available with that index: "
            f"{torch.cuda.device_count()} GPU(s) here (cuda:0..)"
        )
    return f"cuda:{int(index)}" if colon else "cuda"
