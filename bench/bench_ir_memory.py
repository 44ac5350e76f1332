"""Peak memory of InformationRetrievalEvaluator over a 200k-document corpus: chunking bounds it.

The corpus is synthetic (deterministic word salad) and the encoder is a cheap hashing bag-of-words
model with 384-d float32 outputs (like MiniLM), so the run measures the evaluator, not a network.
Each configuration runs in a fresh process; we reset the kernel's peak-RSS mark (VmHWM) after the
corpus is built and report how much the evaluation adds on top of it.

    python bench/bench_ir_memory.py                 # the matrix: tinyst at 3 chunk sizes + ST's default
    python bench/bench_ir_memory.py --impl tinyst --chunk 10000 --docs 200000   # one run, JSON out
"""
import argparse
import json
import os
import subprocess
import sys
import time
import zlib
from types import SimpleNamespace

import numpy as np
import torch

DIM, VOCAB = 384, 20000


class HashingEncoder:
    """Mean of fixed random word vectors: the model surface the IR evaluators use, at numpy speed."""

    similarity_fn_name, truncate_dim = "cosine", None
    model_card_data = SimpleNamespace(set_evaluation_metrics=lambda *args: None)  # ST's evaluators call it

    def __init__(self):
        self.table = np.random.default_rng(0).normal(size=(VOCAB, DIM)).astype(np.float32)

    def encode(self, sentences, prompt_name=None, prompt=None, batch_size=32, show_progress_bar=None,
               convert_to_tensor=False, convert_to_numpy=True, **kw):
        out = np.empty((len(sentences), DIM), dtype=np.float32)
        for start in range(0, len(sentences), 256):  # bounded scratch space, like a real batched encode
            batch = sentences[start : start + 256]
            ids = [np.array([zlib.crc32(w.encode()) % VOCAB for w in t.split()] or [0]) for t in batch]
            lens = np.array([len(i) for i in ids])
            sums = np.add.reduceat(self.table[np.concatenate(ids)], np.r_[0, np.cumsum(lens)[:-1]], axis=0)
            out[start : start + len(batch)] = sums / lens[:, None]
        return torch.from_numpy(out) if convert_to_tensor else out

    def similarity(self, a, b):
        a, b = torch.nn.functional.normalize(a, dim=-1), torch.nn.functional.normalize(b, dim=-1)
        return a @ b.T  # (Q, C)


def rss_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field)) / 1024


def build(n_docs: int, n_queries: int):
    """Deterministic corpus of n_docs 30-word documents; each query copies 6 words of a random
    'target' document and names it (plus 2 neighbours) as relevant."""
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(VOCAB)]
    word_ids = rng.integers(0, VOCAB, size=(n_docs, 30))
    corpus = {f"doc{i}": " ".join(words[j] for j in row) for i, row in enumerate(word_ids)}
    queries, qrels = {}, {}
    for q, target in enumerate(rng.choice(n_docs, n_queries, replace=False)):
        queries[f"q{q}"] = " ".join(words[j] for j in word_ids[target, :6])
        qrels[f"q{q}"] = {f"doc{target}", f"doc{(target + 1) % n_docs}", f"doc{(target + 2) % n_docs}"}
    return queries, corpus, qrels


def run_one(impl: str, chunk: int, n_docs: int, n_queries: int) -> dict:
    torch.set_num_threads(1)
    if impl == "st":
        from sentence_transformers.evaluation import InformationRetrievalEvaluator
    else:
        from tinyst.evaluation import InformationRetrievalEvaluator
    queries, corpus, qrels = build(n_docs, n_queries)
    model = HashingEncoder()
    evaluator = InformationRetrievalEvaluator(queries, corpus, qrels, corpus_chunk_size=chunk, write_csv=False)
    before = rss_mb("VmRSS")
    try:  # reset the peak mark so VmHWM below is the evaluation's own peak
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = True
    except OSError:
        reset = False
    t0 = time.time()
    out = evaluator(model)
    return {"impl": impl, "docs": n_docs, "queries": n_queries, "chunk": chunk, "seconds": round(time.time() - t0, 1),
            "rss_before_mb": round(before), "peak_rss_mb": round(rss_mb("VmHWM")), "peak_reset": reset,
            "added_mb": round(rss_mb("VmHWM") - before), "ndcg@10": out["cosine_ndcg@10"],
            "map@100": out["cosine_map@100"]}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--impl", choices=["tinyst", "st"])
    p.add_argument("--chunk", type=int, default=50000)
    p.add_argument("--docs", type=int, default=200000)
    p.add_argument("--queries", type=int, default=225)
    args = p.parse_args()
    if args.impl:
        print(json.dumps(run_one(args.impl, args.chunk, args.docs, args.queries)))
        return
    runs = [("tinyst", 5000), ("tinyst", 50000), ("tinyst", args.docs), ("st", 50000)]
    for impl, chunk in runs:
        cmd = [sys.executable, __file__, "--impl", impl, "--chunk", str(chunk), "--docs", str(args.docs),
               "--queries", str(args.queries)]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        res = subprocess.run(cmd, capture_output=True, text=True, env=env)
        print(res.stdout.strip() or res.stderr[-2000:], flush=True)


if __name__ == "__main__":
    main()
