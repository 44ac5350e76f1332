"""GPU training-step speed, tinyst vs sentence-transformers (whatever version is installed), MPNet-base shape.

One randomly initialised MPNet-base-shaped model (12 layers, 768 wide, FFN 3072, WordPiece vocab
trained on stdlib docstrings) is saved once in hub format; each library loads that folder in a fresh
subprocess and runs the same hand-written loop: MultipleNegativesRankingLoss on (anchor, positive)
batches of stdlib (docstring, definition) pairs cut at 128 tokens (tutorials/data.py), autocast in bf16 or fp16 (GradScaler), clip 1.0, AdamW (fused).
Reported: tokens/s (real tokens, both columns) over the timed steps, and MFU = 6 x non-embedding
parameters x tokens/s / the GPU's dense peak (--peak-tflops, default 989: H100/H200 bf16/fp16).
Usage: bench/gpu.sh  (or python bench/bench_gpu.py --device cpu --tiny for a smoke run on CPU)
Not included: the trainers' own loops (data loading, logging); multi-GPU.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tutorials"))
sys.path.insert(0, os.path.dirname(__file__))
from common import table  # noqa: E402

PAIR_FILES = 300  # stdlib files to draw (query, document) pairs from


def make_model(folder: str, tiny: bool) -> None:
    from data import stdlib_pairs, train_wordpiece

    import tinyst

    tok = train_wordpiece([t for pair in stdlib_pairs(PAIR_FILES) for t in pair], vocab_size=4000)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")  # MPNet's default pad token is <pad>; this vocab has [PAD]
    size = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128) if tiny else \
        dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
    config = dict(model_type="mpnet", vocab_size=tok.get_vocab_size(), max_position_embeddings=514,
                  pad_token_id=0, **size)
    model = tinyst.sentence_transformer.from_config(config, tok, max_seq_length=128, device="cpu")
    model.save(folder)


def worker(lib: str, folder: str, dtype: str, device: str, batch: int, steps: int, warmup: int) -> None:
    import torch

    if lib == "tinyst":
        from tinyst import SentenceTransformer
        from tinyst.losses import MultipleNegativesRankingLoss
    else:
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.losses import MultipleNegativesRankingLoss
    torch.manual_seed(0)
    model = SentenceTransformer(folder, device=device)
    model.max_seq_length = 128
    loss_fn = MultipleNegativesRankingLoss(model)
    from data import stdlib_pairs

    pairs = stdlib_pairs(PAIR_FILES)
    batches = []
    for i in range(warmup + steps):
        rows = [pairs[(i * batch + j) % len(pairs)] for j in range(batch)]
        a, p = model.tokenize([q for q, _ in rows]), model.tokenize([d for _, d in rows])
        batches.append([{k: v.to(device) for k, v in f.items()} for f in (a, p)])
    tokens = sum(int(f["attention_mask"].sum()) for b in batches[warmup:] for f in b)
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}[dtype]
    scaler = torch.amp.GradScaler(device, enabled=amp == torch.float16)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-5, fused=device == "cuda")
    model.train()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for i, features in enumerate(batches):
        if i == warmup:
            sync()
            t0 = time.perf_counter()
        with torch.autocast(device, dtype=amp, enabled=amp is not None):
            loss = loss_fn(features, None)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
    sync()
    seconds = time.perf_counter() - t0
    n_emb = sum(p.numel() for n, p in model.named_parameters() if "embed" in n or ".emb." in n or "rel" in n)
    mem = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else 0.0
    print(json.dumps({"tokens_per_s": tokens / seconds, "step_ms": 1000 * seconds / steps, "loss": loss.item(),
                      "params": sum(p.numel() for p in params), "non_embedding_params": sum(p.numel() for p in params) - n_emb,
                      "max_mem_gib": mem, "version": __import__(lib if lib == "tinyst" else "sentence_transformers").__version__}))


def main(device: str, tiny: bool, batch: int, steps: int, warmup: int, peak_tflops: float, dtypes: list) -> list:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "mpnet-base-random")
        make_model(folder, tiny)
        for dtype in dtypes:
            res = {}
            for lib in ("tinyst", "st"):
                cmd = [sys.executable, __file__, "--worker", lib, folder, dtype, device, str(batch), str(steps), str(warmup)]
                out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
                if out.returncode != 0:
                    print(f"{lib} {dtype} failed:\n{out.stderr[-3000:]}", file=sys.stderr)
                    continue
                res[lib] = json.loads(out.stdout.strip().splitlines()[-1])
            for lib, r in res.items():
                mfu = 6 * r["non_embedding_params"] * r["tokens_per_s"] / (peak_tflops * 1e12)
                ratio = r["tokens_per_s"] / res["st"]["tokens_per_s"] if "st" in res else float("nan")
                rows.append([f"{lib} {r['version']}", dtype, f"{r['tokens_per_s']:,.0f}", f"{r['step_ms']:.1f}",
                             f"{mfu:.1%}", f"{r['max_mem_gib']:.2f}", f"{ratio:.2f}"])
    print(table(["library", "precision", "tokens/s", "ms/step", "MFU", "peak GiB", "tokens/s vs ST"], rows))
    print(f"\nbatch {batch} pairs of up to 128 tokens, {steps} timed steps after {warmup}; MFU against {peak_tflops:.0f} TFLOP/s")
    return rows


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], *map(int, sys.argv[6:9]))
    else:
        p = argparse.ArgumentParser()
        p.add_argument("--device", default="cuda")
        p.add_argument("--tiny", action="store_true", help="a 2-layer model (smoke run)")
        p.add_argument("--batch", type=int, default=64)
        p.add_argument("--steps", type=int, default=30)
        p.add_argument("--warmup", type=int, default=5)
        p.add_argument("--peak-tflops", type=float, default=989.0)
        p.add_argument("--dtypes", default="bf16,fp16")
        a = p.parse_args()
        main(a.device, a.tiny, a.batch, a.steps, a.warmup, a.peak_tflops, a.dtypes.split(","))
