"""Training parity, tinyst vs sentence-transformers 3.4.1's own trainer, on one finetuning recipe.

paraphrase-MiniLM-L3-v2 + CoSENTLoss on STSb train (label score / 5), 1 epoch, batch 16, lr 2e-5,
warmup_ratio 0.1, seed 0, everything else at the defaults. Each library trains in a fresh subprocess
and saves its model; both saved models are then loaded with sentence-transformers and scored with
ST's EmbeddingSimilarityEvaluator on STSb test (spearman_cosine), so the metric code is the same.
The batches differ (ST 3.4 leaves its sampler generator unseeded when seed == 0), so expect
agreement within seed noise (ST itself: 0.8332-0.8335 over seeds 0-2), not equal digits.
Usage: python bench/bench_train_parity.py [--seed 0]   (minutes per library on 2 cores)
Not included: repeats over seeds (pass --seed to run another).
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, __import__("os").path.dirname(__file__))
from common import DATA, MODELS, run_worker, table  # noqa: E402

RECIPE = dict(num_train_epochs=1, per_device_train_batch_size=16, learning_rate=2e-5, warmup_ratio=0.1)


def read_stsb(split: str) -> dict:
    """STSb TSV: score in column 4, sentences in 5 and 6 (some rows carry extra trailing columns)."""
    name = {"train": "sts-train.csv", "test": "sts-test.csv"}[split]
    rows = [ln.rstrip("\n").split("\t") for ln in open(DATA / "stsb" / name, encoding="utf-8")]
    return {"sentence1": [r[5] for r in rows], "sentence2": [r[6] for r in rows],
            "score": [float(r[4]) / 5 for r in rows]}


def worker(lib: str, model_dir: str, out_dir: str, seed: int) -> None:
    common = dict(output_dir=out_dir, seed=seed, save_strategy="no", report_to="none", disable_tqdm=True,
                  use_cpu=True, **RECIPE)
    if lib == "tinyst":
        from tinyst import Dataset, SentenceTransformer, SentenceTransformerTrainer
        from tinyst import SentenceTransformerTrainingArguments as Args
        from tinyst.losses import CoSENTLoss
    else:
        from datasets import Dataset
        from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
        from sentence_transformers import SentenceTransformerTrainingArguments as Args
        from sentence_transformers.losses import CoSENTLoss
    model = SentenceTransformer(model_dir, device="cpu")
    train = Dataset.from_dict(read_stsb("train"))
    trainer = SentenceTransformerTrainer(model=model, args=Args(**common), train_dataset=train, loss=CoSENTLoss(model))
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    model.save(str(Path(out_dir) / "final"))
    steps = trainer.state.global_step if lib == "st" else trainer.state["global_step"]
    print(json.dumps({"seconds": seconds, "steps": steps}))


def stsb_test_spearman(model_dir: str) -> float:
    """spearman_cosine on STSb test with sentence-transformers' own model and evaluator."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.evaluation import EmbeddingSimilarityEvaluator

    test = read_stsb("test")
    evaluator = EmbeddingSimilarityEvaluator(test["sentence1"], test["sentence2"], test["score"], name="sts-test")
    return evaluator(SentenceTransformer(model_dir, device="cpu"))["sts-test_spearman_cosine"]


def main(seed: int = 0) -> list:
    l3 = MODELS / "paraphrase-MiniLM-L3-v2"
    if not l3.is_dir():
        sys.exit(f"paraphrase-MiniLM-L3-v2 not found at {l3}: set TINYST_MODELS")
    rows, scores = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for lib in ("tinyst", "st"):
            res = run_worker(__file__, lib, str(l3), f"{tmp}/{lib}", seed)
            scores[lib] = stsb_test_spearman(f"{tmp}/{lib}/final")
            rows.append([lib, f"{scores[lib]:.4f}", res["steps"], f"{res['seconds']:.0f}"])
    print(table(["trainer", "STSb test spearman_cosine", "steps", "train seconds"], rows))
    print(f"\ndifference tinyst - ST: {scores['tinyst'] - scores['st']:+.4f} (seed {seed}; acceptance: within 0.005)")
    return rows


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        p = argparse.ArgumentParser()
        p.add_argument("--seed", type=int, default=0)
        main(p.parse_args().seed)
