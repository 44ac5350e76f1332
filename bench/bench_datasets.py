"""Benchmark: load a 3,000,000-row parquet (two text columns) and make one full pass in batches of 4,096.

tinyst.load_dataset (streamed parquet -> cached Arrow file -> memory map) against HF datasets 5.x
(its own parquet -> Arrow cache -> memory map), each in a fresh subprocess with its own empty cache.
Reported per library: first load (includes the one-time conversion), the pass in rows/s, and RSS growth
over the post-import baseline: peak VmRSS and peak RssAnon (heap). VmRSS also counts the file-backed
pages of the memory map the pass touches (page cache the kernel can drop); RssAnon is what the data
really costs in RAM. Run: `python bench/bench_datasets.py [--rows N]`.
Not included: shuffling/random access (see bench_no_duplicates.py), tokenization.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_parquet(path: Path, n_rows: int, chunk: int = 250_000) -> None:
    """Two text columns of about 60 characters each, written in chunks so the parent stays small."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    for start in range(0, n_rows, chunk):
        ids = range(start, min(start + chunk, n_rows))
        table = pa.table({"anchor": [f"what is the meaning of query number {i}, asked on day {i % 365}?" for i in ids],
                          "positive": [f"passage {i} answers a question about topic {i % 997} in some detail." for i in ids]})
        writer = writer or pq.ParquetWriter(str(path), table.schema)
        writer.write_table(table)
    writer.close()


def memory_mb() -> dict:
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                fields[key] = int(value.split()[0]) / 1024
    return fields


def worker(lib: str, path: str, cache: str, batch_size: int) -> dict:
    if lib == "tinyst":
        from tinyst.datasets import load_dataset
        kwargs = {}
    else:
        import datasets
        from datasets import load_dataset
        datasets.disable_progress_bars()
        kwargs = {"keep_in_memory": False}
    base = memory_mb()
    peak = dict(base)
    start = time.perf_counter()
    ds = load_dataset("parquet", data_files=path, split="train", cache_dir=cache, **kwargs)
    load_s = time.perf_counter() - start
    start, rows, chars = time.perf_counter(), 0, 0
    for batch in ds.iter(batch_size=batch_size):
        rows += len(batch["anchor"])
        chars += len(batch["positive"][-1])  # touch the values so both libraries build the python strings
        now = memory_mb()
        peak = {k: max(peak[k], now[k]) for k in peak}
    pass_s = time.perf_counter() - start
    return {"lib": lib, "rows": rows, "load_s": load_s, "pass_s": pass_s, "rows_per_s": rows / pass_s,
            "rss_growth_mb": peak["VmRSS"] - base["VmRSS"], "anon_growth_mb": peak["RssAnon"] - base["RssAnon"]}


def run_worker(lib: str, path: Path, cache: Path, batch_size: int) -> dict:
    args = [sys.executable, __file__, "--worker", lib, f"--path={path}", f"--cache={cache}", f"--batch-size={batch_size}"]
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "PYTHONWARNINGS": "ignore"}
    out = subprocess.run(args, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{lib} worker failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(rows: int = 3_000_000, batch_size: int = 4096) -> list[dict]:
    """Generate the parquet, run both workers, print a Markdown table; return its rows (for bench/run_all.py)."""
    with tempfile.TemporaryDirectory(prefix="tinyst-bench-datasets-") as tmp:
        tmp = Path(tmp)
        make_parquet(tmp / "pairs.parquet", rows)
        size_mb = (tmp / "pairs.parquet").stat().st_size / 2**20
        results = [run_worker(lib, tmp / "pairs.parquet", tmp / f"cache-{lib}", batch_size) for lib in ("tinyst", "hf")]
    hf = results[1]
    table = []
    for r in results:
        table.append({"bench": "datasets load + pass", "lib": r["lib"], "rows": r["rows"], "batch_size": batch_size,
                      "load_s": round(r["load_s"], 2), "pass_s": round(r["pass_s"], 2), "rows_per_s": round(r["rows_per_s"]),
                      "rss_growth_mb": round(r["rss_growth_mb"]), "anon_growth_mb": round(r["anon_growth_mb"]),
                      "pass_speed_vs_hf": round(r["rows_per_s"] / hf["rows_per_s"], 3),
                      "load_time_vs_hf": round(r["load_s"] / hf["load_s"], 3)})
    print(f"load_dataset('parquet') + one pass, {rows:,} rows x 2 text columns ({size_mb:.0f} MB parquet), batch {batch_size}\n")
    print("| library | first load s | pass s | rows/s | rows/s vs HF | load time vs HF | RSS growth MB | RssAnon growth MB |")
    print("|---|---|---|---|---|---|---|---|")
    for t in table:
        print(f"| {t['lib']} | {t['load_s']} | {t['pass_s']} | {t['rows_per_s']:,} | {t['pass_speed_vs_hf']} | "
              f"{t['load_time_vs_hf']} | {t['rss_growth_mb']} | {t['anon_growth_mb']} |")
    print("\nRSS growth counts touched pages of the memory-mapped file; RssAnon growth is heap (goal: < 300 MB).")
    return table


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", choices=["tinyst", "hf"])
    p.add_argument("--rows", type=int, default=3_000_000)
    p.add_argument("--batch-size", type=int, default=4096)
    p.add_argument("--path")
    p.add_argument("--cache")
    a = p.parse_args()
    if a.worker:
        print(json.dumps(worker(a.worker, a.path, a.cache, a.batch_size)))
    else:
        main(a.rows, a.batch_size)
