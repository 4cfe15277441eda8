"""``predictors.device.resolve_device``: the one device resolver, torch-free until needed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from predictors.device import resolve_device


def _expected_auto() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if mps is not None and mps.is_available() else "cpu"


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_cpu_and_auto_do_not_import_torch() -> None:
    code = (
        "import sys; from predictors.device import resolve_device as r; "
        "print(r('cpu'), r(' CPU '), r('auto'), 'torch' in sys.modules)"
    )
    # without torch loaded "auto" is left for the torch side (see the module docstring)
    assert _run(code) == "cpu cpu auto False"


def test_auto_resolves_once_torch_is_imported() -> None:
    import torch  # noqa: F401

    assert resolve_device("auto") == _expected_auto()
    assert resolve_device("AUTO") == _expected_auto()


@pytest.mark.parametrize("name", ["tpu", "cuda:", "cuda:x", "cpu:0", "mps:1", "", "gpu"])
def test_unknown_names_list_the_accepted_ones(name: str) -> None:
    with pytest.raises(ValueError, match=r"unknown device .*known: auto, cpu, cuda, mps"):
        resolve_device(name)


def test_not_a_string_is_an_unknown_device() -> None:
    with pytest.raises(ValueError, match="unknown device 3"):
        resolve_device(3)  # type: ignore[arg-type]


def test_cuda_is_checked_against_the_machine() -> None:
    import torch

    if not torch.cuda.is_available():
        for name in ("cuda", "cuda:0", "CUDA:1"):
            with pytest.raises(ValueError, match="CUDA is not available"):
                resolve_device(name)
        return
    n = torch.cuda.device_count()
    assert resolve_device("cuda") == "cuda"
    assert resolve_device("cuda:0") == "cuda:0" and resolve_device(" Cuda:00 ") == "cuda:0"
    with pytest.raises(ValueError, match=f"{n} GPU"):
        resolve_device(f"cuda:{n}")


def test_mps_is_checked_against_the_machine() -> None:
    import torch

    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        assert resolve_device("mps") == "mps"
    else:
        with pytest.raises(ValueError, match="MPS is not available"):
            resolve_device("mps")


def test_non_torch_models_and_helpers_do_not_import_torch() -> None:
    code = (
        "import sys, predictors.registry as r, predictors.options, predictors.numerics; "
        "[r.get_class(n)() for n in ('bias', 'knn', 'mf', 'mf-temporal', 'svdpp')]; "
        "print('torch' in sys.modules)"
    )
    assert _run(code) == "False"  # svdpp imports torch when it fits, not before


def test_the_torch_package_does_not_shadow_torch() -> None:
    import torch

    import predictors.torch.adapter as adapter
    import predictors.torch.trainer as trainer

    assert trainer.torch is torch and adapter.torch is torch
    assert torch.__name__ == "torch" and hasattr(torch, "nn")
