"""Encode throughput, tinyst vs sentence-transformers, same machine, same run.

For each model (the shared paraphrase-MiniLM-L3-v2 and, when installed, all-MiniLM-L6-v2):
encode STSb test sentences with batch 32 in fresh subprocesses, alternating libraries, and
report the median sentences/s and the ratio tinyst/ST. Also the achieved GFLOP/s of tinyst's
encode against this machine's measured fp32 matmul peak.
Usage: python bench/bench_encode.py [--repeats 3] [--limit 2000]
"""
import argparse
import sys
import time

sys.path.insert(0, __import__("os").path.dirname(__file__))
from common import MODELS, alternate, l6_dir, median, stsb_sentences, table  # noqa: E402


def worker(lib, model_dir, limit):
    import torch

    texts = stsb_sentences(limit=limit)
    if lib == "tinyst":
        import tinyst

        model = tinyst.SentenceTransformer(model_dir, device="cpu")
    else:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(model_dir, device="cpu")
    model.encode(texts[:64], batch_size=32)  # warm-up
    t0 = time.perf_counter()
    model.encode(texts, batch_size=32)
    dt = time.perf_counter() - t0
    tokens = sum(int(m.sum()) for m in (model.tokenize(texts[i : i + 256])["attention_mask"] for i in range(0, len(texts), 256)))
    print(__import__("json").dumps({"sent_per_s": len(texts) / dt, "seconds": dt, "tokens": tokens,
                                    "threads": torch.get_num_threads()}))


def matmul_peak_gflops(n=1024, reps=20):
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def main(repeats=3, limit=2000):
    import json
    from pathlib import Path

    models = {"paraphrase-MiniLM-L3-v2": str(MODELS / "paraphrase-MiniLM-L3-v2"), "all-MiniLM-L6-v2": l6_dir()}
    rows = []
    for name, path in models.items():
        if path is None or not Path(path).is_dir():
            print(f"skipping {name}: not found", file=sys.stderr)
            continue
        res = alternate(__file__, {"tinyst": (path, limit), "st": (path, limit)}, repeats)
        ts, st = median(res["tinyst"], "sent_per_s"), median(res["st"], "sent_per_s")
        cfg = json.loads((Path(path) / "config.json").read_text())
        D, I, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
        tokens = res["tinyst"][0]["tokens"]
        flops = tokens * L * 2 * (4 * D * D + 2 * D * I)  # linear layers only: a lower bound
        gflops = flops / median(res["tinyst"], "seconds") / 1e9
        rows.append([f"encode {name} (batch 32, {limit} STSb sentences)", f"{ts:.1f}", f"{st:.1f}",
                     f"{ts / st:.2f}", f"{gflops:.1f}"])
    peak = matmul_peak_gflops()
    print(table(["benchmark", "tinyst sent/s", "ST sent/s", "ratio tinyst/ST", "tinyst GFLOP/s"], rows))
    print(f"\nmeasured fp32 matmul peak: {peak:.1f} GFLOP/s (1024x1024)")
    return rows


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        p = argparse.ArgumentParser()
        p.add_argument("--repeats", type=int, default=3)
        p.add_argument("--limit", type=int, default=2000)
        a = p.parse_args()
        main(a.repeats, a.limit)
