"""The costed plan of a sweep (every model × E embeddings × S seeds) over N machines: what is
shipped to the workers and how large it is, how many jobs each model makes and what each
costs, where the time goes, and the N at which the sweep finishes in an hour.

    python tests/benchmarks/cluster_plan.py --ratings FULL.parquet --embedding EMB.parquet \\
        --costs RESULTS.json [RESULTS.json ...] [--given svdpp=1500] \\
        [--embeddings 5 --seeds 5] [--hours 1]

Nothing is fitted. The data is loaded, embedded and split exactly as ``bench run`` does, the
jobs are planned, and the inputs every worker receives (``bench.executors.JobInputs``: the
TrainSets, the validation check, the test batches) are pickled as Ray pickles them (protocol
5, arrays out of band) to measure what travels; the E - 1 further embeddings are counted at
the given file's size. Per-job costs (fit + predict seconds) come from results files of
``bench run`` on the same data (``--costs``, e.g. the full-scale runs of
``tests/benchmarks/e2e.py``); a model without a measured cost in them needs
``--given NAME=SECONDS`` (seconds measured elsewhere, e.g. by a run that was stopped) and is
marked given. The schedule is longest-job-first over N workers, one job at a time on each
(the costs were measured with a job on every core of the machine).
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import pickle
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console


def shipped_bytes(obj: Any) -> tuple[int, int]:
    """(pickle stream bytes, out-of-band buffer bytes) of ``obj`` as Ray serialises it."""
    buffers: list[pickle.PickleBuffer] = []
    stream = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    return len(stream), sum(memoryview(b).nbytes for b in buffers)


def measured_costs(paths: list[Path]) -> dict[str, dict[str, float]]:
    """model name -> fit+predict seconds and memory, the largest over the files' ok runs."""
    out: dict[str, dict[str, float]] = {}
    for path in paths:
        doc = json.loads(path.read_text())
        for m in doc["models"]:
            if m.get("status") != "ok":
                continue
            name = (m.get("run_key") or {}).get("model", m.get("key", "")).split(":")[0]
            t = m["timings"]
            secs = float(t["fit_s"]) + float(t["predict_s"])
            mem = float((m.get("memory") or {}).get("rss_delta_mb") or 0.0)
            old = out.get(name)
            if old is None or secs > old["seconds"]:
                out[name] = {"seconds": secs, "rss_delta_mb": mem}
    return out


def makespan(costs: list[float], workers: int) -> float:
    """Longest-processing-time-first schedule of ``costs`` on ``workers``: its length."""
    loads = [0.0] * workers
    heapq.heapify(loads)
    for c in sorted(costs, reverse=True):
        heapq.heappush(loads, heapq.heappop(loads) + c)
    return max(loads)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ratings", type=Path, required=True)
    ap.add_argument("--embedding", type=Path, required=True)
    ap.add_argument("--costs", type=Path, nargs="+", required=True)
    ap.add_argument("--given", action="append", default=[], help="NAME=SECONDS per job")
    ap.add_argument("--embeddings", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--hours", type=float, default=1.0)
    a = ap.parse_args()

    from bench import api
    from bench.plan import capabilities
    from bench.runner import job_inputs, prepare

    spec = api.make_spec(
        "all",
        ratings=a.ratings,
        embeddings=[str(a.embedding)],
        seeds=list(range(a.seeds)),
        offline=True,
    )
    t0 = time.perf_counter()
    prep = prepare(spec, Console(quiet=True))
    prep_s = time.perf_counter() - t0
    inputs = job_inputs(spec, prep, "cpu", need_torch=False)
    inter = prep.loaded.interactions
    (emb,) = prep.embeddings.values()
    emb_bytes = emb.vectors.nbytes + emb.present.nbytes
    stream, oob = shipped_bytes(inputs)
    total = stream + oob + (a.embeddings - 1) * emb_bytes
    parts = {
        "training events and targets (TrainSet)": sum(shipped_bytes(inputs.trains[None])),
        "validation check": sum(shipped_bytes(inputs.val_check)),
        "test batches": sum(shipped_bytes(inputs.tests)),
        f"embeddings ({a.embeddings} x {emb.vectors.shape[0]:,} x {emb.vectors.shape[1]})": (
            a.embeddings * emb_bytes
        ),
    }

    costs = measured_costs(a.costs)
    given = {}
    for item in a.given:
        name, _, secs = item.partition("=")
        given[name] = float(secs)
    jobs: list[float] = []
    rows = []
    seen = set()
    missing = []
    for job in prep.jobs:
        name = job.spec.name
        if name in seen:
            continue
        seen.add(name)
        caps = capabilities(job.spec)
        n = (a.embeddings if caps.embeddings else 1) * (a.seeds if caps.seeded else 1)
        if name in costs:
            secs, how = costs[name]["seconds"], "measured"
        elif name in given:
            secs, how = given[name], "given"
        else:
            missing.append(name)
            continue
        jobs += [secs] * n
        rows.append((name, n, secs, how))
    if missing:
        sys.exit(f"no cost for {', '.join(missing)}: give --costs with them, or --given NAME=S")

    print(
        f"data: {len(inter):,} ratings, {inter.n_users:,} users, {inter.n_items:,} items; "
        f"load + embeddings + split {prep_s:.1f} s on the driver"
    )
    print(f"\nshipped once to every worker node: {total / 1e6:,.0f} MB")
    for what, size in parts.items():
        print(f"  {what}: {size / 1e6:,.0f} MB")
    print("\n| model | jobs | s per job | machine-s | cost |\n|---|---|---|---|---|")
    for name, n, secs, how in rows:
        print(f"| {name} | {n} | {secs:,.1f} | {n * secs:,.0f} | {how} |")
    work = sum(jobs)
    print(f"| all | {len(jobs)} | | {work:,.0f} ({work / 3600:.1f} h) | |")
    budget = a.hours * 3600
    longest = max(jobs)
    print(f"\nlongest job {longest:,.0f} s: no N finishes sooner than that")
    print("| machines | sweep (LPT schedule) | fits in the budget |\n|---|---|---|")
    for n in (1, 2, 4, 8, 10, 12, 16, 20, 24, 32, 48, 64):
        span = makespan(jobs, n)
        print(f"| {n} | {span / 60:,.1f} min | {'yes' if span <= budget else 'no'} |")
    need = next((n for n in range(1, len(jobs) + 1) if makespan(jobs, n) <= budget), None)
    lower = math.ceil(work / budget)
    print(
        f"\nsmallest N within {a.hours:g} h: {need} (the work alone needs {lower}; "
        f"{len(jobs)} jobs)"
        if need is not None
        else f"\nno N fits {a.hours:g} h: the longest job alone is {longest / 60:.1f} min"
    )


if __name__ == "__main__":
    main()
