"""`bench run --ddp N`: the same command on N torchrun ranks of this machine.

The launcher checks every option first (a bad one fails once, here), then runs
``python -m torch.distributed.run --standalone --nnodes 1 --nproc-per-node N -m bench.cli
<the same arguments>``; under torchrun every rank runs the command with the ``ddp`` executor
(``bench.executors.DDPExecutor``). Rank 0 prints and writes; it hands its exit status back
to the launcher through a file, so a run with a failed model exits 1 without torchrun's
failure report (which is kept for a rank that crashes). Each rank gets
``cores // N`` intra-op threads unless ``OMP_NUM_THREADS`` or ``--torch-threads`` says
otherwise.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from bench.errors import ConfigError
from bench.torchrun import rank

__all__ = ["STATUS_ENV", "finish", "launch", "rank"]

#: the file where rank 0 leaves the exit status for the launcher
STATUS_ENV = "RATINGBENCH_DDP_STATUS"


def torchrun_command(n: int, args: list[str]) -> list[str]:
    """The command that runs ``bench <args>`` on ``n`` ranks of this machine."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes=1",
        f"--nproc-per-node={n}",
        "-m",
        "bench.cli",
        *args,
    ]


def launch(n: int, console: Any) -> NoReturn:
    """Run this command line on ``n`` ranks and exit with rank 0's status."""
    args = sys.argv[1:]
    if not any(a == "--ddp" or a.startswith("--ddp=") for a in args):
        raise ConfigError(
            "--ddp launches torchrun from the command line (`bench run --ddp N ...`); from "
            "Python, start `torchrun --nproc-per-node N -m bench.cli run ...` instead"
        )
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // n)))
    fd, status = tempfile.mkstemp(prefix="ratingbench-ddp-", suffix=".status")
    os.close(fd)
    env[STATUS_ENV] = status
    console.print(
        f"data-parallel: {n} ranks (torchrun --standalone --nproc-per-node={n}), "
        f"{env['OMP_NUM_THREADS']} thread(s) each"
    )
    try:
        rc = subprocess.call(torchrun_command(n, args), env=env)
        text = Path(status).read_text().strip()
    except KeyboardInterrupt:
        rc, text = 130, ""
    finally:
        with contextlib.suppress(OSError):
            os.unlink(status)
    if rc == 0 and text.lstrip("-").isdigit():
        sys.exit(int(text))
    console.print(
        f"[red]data-parallel run failed[/]: torchrun exited with {rc} (a rank died or "
        "raised; its report is above). The models finished before are kept in the results "
        "file: `bench run --resume RESULTS.json --ddp N` finishes the rest"
    )
    sys.exit(rc or 1)


def finish(show: Callable[[], None]) -> None:
    """After the run: rank 0 (or a plain run) shows the results through ``show``, which may
    exit; under the launcher rank 0 passes that status back and exits 0; other ranks return."""
    r = rank()
    if r is not None and r > 0:
        return
    status = os.environ.get(STATUS_ENV)
    if r is None or status is None:
        show()
        return
    code = 0
    try:
        show()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    Path(status).write_text(str(code))
