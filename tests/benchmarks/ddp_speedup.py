"""Wall time of one whole `bench run` of a torch model in one process and then with
``--ddp N`` (sequentially, the same command otherwise), the ratio of the wall times and of
the fit times, and how far the predictions are apart.

    python tests/benchmarks/ddp_speedup.py                       # attention, 20k users, N=2
    python tests/benchmarks/ddp_speedup.py --models transformer:epochs=3 --users 200000

Each command runs in a fresh Python process (``bench run ... --offline``), so a time includes
the interpreter, imports, the data (every rank loads its own copy), the fit, the prediction,
the statistics and the writing. The single-process run uses torch's default threads (every
core); each rank gets cores / N.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
from _bench_cli import run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ddp", type=int, default=2)
    ap.add_argument("--models", default="attention:epochs=3")
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("extra", nargs="*", help="more `bench run` options (after --)")
    a = ap.parse_args()
    base = ["--models", a.models, "--dataset", "synthetic", "--users", str(a.users)]
    base += ["--offline", "--resamples", "200", *a.extra]
    with tempfile.TemporaryDirectory() as tmp:
        t1, d1, s1 = run(base, Path(tmp) / "one")
        tn, dn, sn = run([*base, "--ddp", str(a.ddp)], Path(tmp) / "ddp")
    print(f"{'job':<28} {'1 process fit s':>16} {f'--ddp {a.ddp} fit s':>16} {'max |Δpred|':>12}")
    for m1, mn in zip(d1["models"], dn["models"], strict=True):
        key = m1["key"]
        diff = np.max(np.abs(s1[f"pred:{key}"].to_numpy() - sn[f"pred:{key}"].to_numpy()))
        f1, fn = m1["timings"]["fit_s"], mn["timings"]["fit_s"]
        print(f"{key:<28} {f1:16.1f} {fn:16.1f} {diff:12.2e}")
    print(
        f"wall: 1 process {t1:.1f}s, --ddp {a.ddp} {tn:.1f}s, ratio {t1 / tn:.2f}x "
        f"(cores {os.cpu_count()}, torch threads {d1['executor']['torch_threads']} / "
        f"{dn['executor']['torch_threads']} per rank)"
    )


if __name__ == "__main__":
    main()
