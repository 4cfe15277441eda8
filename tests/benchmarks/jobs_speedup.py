"""Wall time of one whole `bench run` with ``--jobs 1`` and then ``--jobs N`` (sequentially, the
same command otherwise), the ratio, and what bounds it: the longest job, the sum of the jobs.

    python tests/benchmarks/jobs_speedup.py                # ml-latest-small, --models all, N=2
    python tests/benchmarks/jobs_speedup.py --jobs 4 -- --torch-threads 1
    python tests/benchmarks/jobs_speedup.py --threads-n 1   # --jobs 2 with 1 torch thread a job

Each command runs in a fresh Python process (``bench run ... --offline``), so a time includes
the interpreter, imports, loading, every model, the statistics and the writing. Needs the data
folder in $RATINGBENCH_DATA_DIR. The predictions of the two runs are compared (they must be
identical); a table of per-job fit+predict seconds is printed from the results files.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from _bench_cli import run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--models", default="all")
    ap.add_argument("--dataset", default="ml-latest-small")
    ap.add_argument(
        "--threads-n",
        type=int,
        default=None,
        help="--torch-threads of the --jobs N run only (the --jobs 1 run keeps torch's "
        "default): N workers of T threads against one job on every core",
    )
    ap.add_argument("extra", nargs="*", help="more `bench run` options (after --)")
    a = ap.parse_args()
    base = ["--models", a.models, "--dataset", a.dataset, "--offline", *a.extra]
    with tempfile.TemporaryDirectory() as tmp:
        t1, d1, s1 = run([*base, "--jobs", "1"], Path(tmp) / "j1", ok=(0, 1))
        more = [] if a.threads_n is None else ["--torch-threads", str(a.threads_n)]
        tn, dn, sn = run([*base, "--jobs", str(a.jobs), *more], Path(tmp) / "jn", ok=(0, 1))
    same = list(s1.columns) == list(sn.columns) and all(
        s1[c].to_numpy().tobytes() == sn[c].to_numpy().tobytes() for c in s1.columns
    )
    print(f"{'job':<28} {'jobs=1 s':>9} {'jobs=' + str(a.jobs) + ' s':>9}")
    jobs1 = {m["key"]: m["timings"]["fit_s"] + m["timings"]["predict_s"] for m in d1["models"]}
    jobsn = {m["key"]: m["timings"]["fit_s"] + m["timings"]["predict_s"] for m in dn["models"]}
    for k in jobs1:
        print(f"{k:<28} {jobs1[k]:9.2f} {jobsn.get(k, float('nan')):9.2f}")
    m1, mn = d1["timings"]["models_s"], dn["timings"]["models_s"]
    print(
        f"models phase: {m1:.1f}s / {mn:.1f}s; sum of jobs {sum(jobs1.values()):.1f}s / "
        f"{sum(jobsn.values()):.1f}s; longest job {max(jobs1.values()):.1f}s / "
        f"{max(jobsn.values()):.1f}s"
    )
    print(
        f"wall: --jobs 1 {t1:.1f}s, --jobs {a.jobs} {tn:.1f}s, ratio {t1 / tn:.2f}x "
        f"(cores {os.cpu_count()}, torch threads per job {dn['executor']['torch_threads']})"
    )
    print(f"predictions identical: {same}")
    if a.threads_n is not None and not same:
        print("(other torch thread counts change the float sums of the torch models)")


if __name__ == "__main__":
    main()
