"""Benchmark: one NO_DUPLICATES epoch over 1,000,000 (anchor, positive) rows, 30% duplicate anchors.

tinyst's NoDuplicatesBatchSampler (pyarrow hashing once + greedy pass over ids) against ST 3.4.1's
(`dataset[i]` per scanned row, over an HF `datasets.Dataset`), each in its own subprocess so
neither warms the other's caches. Timed: sampler construction plus iterating the whole epoch.
If ST's epoch would exceed `st_budget_s`, ST is timed over its first batches and extrapolated to
its full batch count (the output says so). Run: `python bench/bench_no_duplicates.py [--rows N]`.
Not included: DDP, tokenization, the DataLoader.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_rows(n_rows: int, dup_frac: float, seed: int = 0) -> dict:
    """(anchor, positive) columns: a `dup_frac` share of rows reuse an anchor of another row."""
    import numpy as np
    rng = np.random.default_rng(seed)
    n_unique = n_rows - int(n_rows * dup_frac)
    anchor_ids = np.concatenate([np.arange(n_unique), rng.integers(0, n_unique, n_rows - n_unique)])
    rng.shuffle(anchor_ids)
    return {"anchor": [f"what is the meaning of query number {a}?" for a in anchor_ids.tolist()],
            "positive": [f"passage {i} answers a question about topic {i % 997}." for i in range(n_rows)]}


def worker(lib: str, n_rows: int, dup_frac: float, batch_size: int, budget_s: float) -> dict:
    import torch
    columns = make_rows(n_rows, dup_frac)
    if lib == "tinyst":
        from tinyst.datasets import Dataset
        from tinyst.sampler import NoDuplicatesBatchSampler
        dataset = Dataset.from_dict(columns)
    else:
        from datasets import Dataset
        from sentence_transformers.sampler import NoDuplicatesBatchSampler
        dataset = Dataset.from_dict(columns)
    del columns
    start, cpu_start = time.perf_counter(), time.process_time()
    sampler = NoDuplicatesBatchSampler(dataset, batch_size, drop_last=True, valid_label_columns=["label"],
                                       generator=torch.Generator(), seed=12)
    n_batches, rows, extrapolated = 0, 0, False
    for batch in sampler:
        n_batches, rows = n_batches + 1, rows + len(batch)
        if time.perf_counter() - start > budget_s:
            extrapolated = True
            break
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    if extrapolated:  # ST's own __len__ (n_rows // batch_size) as the full-epoch batch count
        seconds, cpu_seconds = (x * len(sampler) / n_batches for x in (seconds, cpu_seconds))
    return {"lib": lib, "seconds": seconds, "cpu_seconds": cpu_seconds, "batches": n_batches, "rows": rows,
            "extrapolated": extrapolated}


def run_worker(lib: str, **kw) -> dict:
    args = [sys.executable, __file__, "--worker", lib] + [f"--{k.replace('_', '-')}={v}" for k, v in kw.items()]
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run(args, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{lib} worker failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(rows: int = 1_000_000, dup_frac: float = 0.3, batch_size: int = 32, st_budget_s: float = 300.0) -> list[dict]:
    """Run both workers; print a Markdown table; return its rows (for bench/run_all.py)."""
    kw = dict(rows=rows, dup_frac=dup_frac, batch_size=batch_size)
    results = [run_worker("tinyst", budget_s=1e9, **kw), run_worker("st", budget_s=st_budget_s, **kw)]
    st_wall, st_cpu = results[1]["seconds"], results[1]["cpu_seconds"]
    table = [{"bench": "no_duplicates epoch", "lib": r["lib"], "rows": rows, "batch_size": batch_size,
              "seconds": round(r["seconds"], 2), "cpu_seconds": round(r["cpu_seconds"], 2),
              "ratio_vs_st": round(r["seconds"] / st_wall, 4), "cpu_ratio_vs_st": round(r["cpu_seconds"] / st_cpu, 4),
              "note": (f"extrapolated from {r['batches']} batches" if r["extrapolated"] else f"{r['batches']} batches")}
             for r in results]
    print(f"NO_DUPLICATES, one epoch (construction + iteration), {rows:,} rows, {dup_frac:.0%} duplicate anchors, "
          f"batch {batch_size}, drop_last\n")
    print("| library | wall s | CPU s | batches | wall / ST | CPU / ST |\n|---|---|---|---|---|---|")
    for t in table:
        cells = [t["lib"], t["seconds"], t["cpu_seconds"], t["note"], t["ratio_vs_st"], t["cpu_ratio_vs_st"]]
        print("| " + " | ".join(str(c) for c in cells) + " |")
    ours = table[0]
    print(f"\nratio tinyst / ST = {ours['ratio_vs_st']:.4f} wall, {ours['cpu_ratio_vs_st']:.4f} CPU (goal <= 0.1)")
    return table


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", choices=["tinyst", "st"])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--dup-frac", type=float, default=0.3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--budget-s", type=float, default=300.0)
    a = p.parse_args()
    if a.worker:
        print(json.dumps(worker(a.worker, a.rows, a.dup_frac, a.batch_size, a.budget_s)))
    else:
        main(a.rows, a.dup_frac, a.batch_size, a.budget_s)
