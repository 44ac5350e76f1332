"""Import time and memory, tinyst vs sentence-transformers 3.4.1, same machine, same run.

Each measurement is a fresh `python -c "import X"` subprocess (interpreter start included, as a
user pays it), alternating libraries; medians of the repeats and the ratio tinyst/ST. The bare
interpreter and `import torch` are shown for reference (both libraries need torch).
Usage: python bench/bench_import.py [--repeats 5]
Not included: the first-ever import (cold disk cache, .pyc compilation): runs 1..n are all warm.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import table  # noqa: E402

CODE = {"python": "pass", "torch": "import torch", "tinyst": "import tinyst",
        "st": "import sentence_transformers"}
PEAK = "import resource, json; print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))"


def once(what: str) -> tuple:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", f"{CODE[what]}\n{PEAK}"], capture_output=True, text=True,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    seconds = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"{CODE[what]!r} failed:\n{out.stderr[-2000:]}")
    return seconds, json.loads(out.stdout.strip().splitlines()[-1]) / 1024


def main(repeats: int = 5) -> list:
    once("tinyst"), once("st")  # warm the disk cache and .pyc files of both
    runs = {k: [] for k in CODE}
    for _ in range(repeats):
        for k in CODE:
            runs[k].append(once(k))
    med = {k: (statistics.median(s for s, _ in v), statistics.median(m for _, m in v)) for k, v in runs.items()}
    rows = [[f"`{CODE[k]}` (reference)", f"{med[k][0]:.2f} s, {med[k][1]:.0f} MB", "", ""] for k in ("python", "torch")]
    (ts, tm), (ss, sm) = med["tinyst"], med["st"]
    rows.append(["import time, fresh interpreter", f"{ts:.2f} s", f"{ss:.2f} s", f"{ts / ss:.2f}"])
    rows.append(["peak RSS after import", f"{tm:.0f} MB", f"{sm:.0f} MB", f"{tm / sm:.2f}"])
    print(table(["benchmark", "tinyst", "ST 3.4.1", "ratio tinyst/ST"], rows))
    print(f"\n{repeats} alternating runs each, medians")
    return rows


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=5)
    main(p.parse_args().repeats)
