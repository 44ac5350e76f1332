"""Training worker for tests/test_trainer_ddp.py: run it under `torch.distributed.run` (2 gloo ranks)
or as a plain `python` process (no process group), with the same seed and data.

    python tests/ddp_worker.py MODEL_DIR OUT_DIR --batch 4 --jobs cosine mnrl

Each job trains a fresh copy of MODEL_DIR on the same 96 deterministic pairs and writes, into
OUT_DIR/<job>/, the training output (checkpoints, log.jsonl), the final model (`final/`, main rank)
and `rank<r>.json` per rank: the sentence1 texts of every batch the collator saw, the local loss of
every step, the log history and train_loss. Jobs:
    cosine  CosineSimilarityLoss (per-row MSE), gradient accumulation 2, an evaluator that records
            which rank ran it, checkpoints every 2 steps (keep 2)
    mnrl    MultipleNegativesRankingLoss with gather_across_devices=True
    nan     CosineSimilarityLoss whose value (not gradient) is NaN on rank 1 at step 3, nan_loss="skip":
            every rank must skip that step; rank<r>.json then also holds the skip warnings and a
            checksum of the rank's final weights
    small_eval  no training: evaluate() on 12 rows with eval batch 8 (one global batch, none for rank 1);
            rank<r>.json holds the error message
Not included: anything the test does not check.
"""
import argparse
import json
import os
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tiny_models

from tiny_models import corpus  # noqa: E402
from tinyst import Dataset, SentenceTransformer, SentenceTransformerTrainer  # noqa: E402
from tinyst import SentenceTransformerTrainingArguments as Args  # noqa: E402
from tinyst import distributed  # noqa: E402
from tinyst.losses import CosineSimilarityLoss, MultipleNegativesRankingLoss  # noqa: E402

N_ROWS = 96


def pairs() -> Dataset:
    """96 (sentence1, sentence2, score) rows from the builtins' docstrings; distinct sentence1s."""
    lines = list(dict.fromkeys(ln.strip() for d in corpus() for ln in d.splitlines() if len(ln.strip()) > 10))
    rows = lines[: N_ROWS + 1]
    return Dataset.from_dict({"sentence1": rows[:-1], "sentence2": rows[1:],
                              "score": [(i % 5) / 4 for i in range(N_ROWS)]})


class RecordingCollator:
    """Wraps the trainer's collator to note the sentence1 of every batch it turns into features."""

    def __init__(self, inner):
        self.inner, self.batches = inner, []

    def __call__(self, rows, dataset_name=None):
        self.batches.append(list(rows["sentence1"]))
        return self.inner(rows, dataset_name)


class NanOnRank1(CosineSimilarityLoss):
    """CosineSimilarityLoss plus a NaN constant on rank 1's third call: a NaN loss, finite gradients."""

    calls = 0

    def forward(self, sentence_features, labels=None):
        self.calls += 1
        loss = super().forward(sentence_features, labels)
        return loss + float("nan") if (distributed.rank() == 1 and self.calls == 3) else loss


class RankEvaluator:
    """Notes the rank it runs on (a file per call), returns that rank as its metric."""

    def __init__(self, out: Path):
        self.out = out

    def __call__(self, model, output_path=None, epoch=-1, steps=0):
        (self.out / f"evaluated_on_rank{distributed.rank()}_step{steps}").touch()
        return {"rank": float(distributed.rank())}


def run(job: str, model_dir: str, out: Path, batch: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model = SentenceTransformer(model_dir, device="cpu")
    data = pairs()
    common = dict(output_dir=str(out), per_device_train_batch_size=batch, num_train_epochs=1, learning_rate=1e-3,
                  warmup_ratio=0.25, seed=7, logging_steps=1, disable_tqdm=True, use_cpu=True)
    if job == "cosine":
        loss = CosineSimilarityLoss(model)
        args = Args(**common, gradient_accumulation_steps=2, save_steps=2, save_total_limit=2, eval_strategy="steps",
                    eval_steps=2)
        evaluator = RankEvaluator(out)
    elif job == "mnrl":
        data = data.select_columns(["sentence1", "sentence2"])
        loss = MultipleNegativesRankingLoss(model, gather_across_devices=True)
        args = Args(**common, save_strategy="no")
        evaluator = None
    elif job == "nan":
        loss = NanOnRank1(model)
        args = Args(**common, save_strategy="no", nan_loss="skip")
        evaluator = None
    elif job == "small_eval":
        args = Args(**common, per_device_eval_batch_size=8)
        loss = CosineSimilarityLoss(model)
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=loss)
        try:
            trainer.evaluate(eval_dataset=data.select(range(12)))
            error = None
        except ValueError as e:
            error = str(e)
        (out / f"rank{distributed.rank()}.json").write_text(json.dumps({"error": error}))
        return
    else:
        raise ValueError(f"unknown job {job!r}; expected 'cosine', 'mnrl', 'nan' or 'small_eval'")
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=loss, evaluator=evaluator)
    trainer.collator = RecordingCollator(trainer.collator)
    local_losses = []
    step = trainer.training_step

    def recording_step(micro_batches):
        loss_value, grad_norm = step(micro_batches)
        local_losses.append(float(loss_value))
        return loss_value, grad_norm

    trainer.training_step = recording_step
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = trainer.train()
    if distributed.is_main():
        model.save(str(out / "final"), create_model_card=False)
    record = {"rank": distributed.rank(), "world_size": distributed.world_size(),
              "process_group": distributed.is_distributed(), "batches": trainer.collator.batches,
              "step_losses": local_losses, "log_history": trainer.state["log_history"],
              "train_loss": result.training_loss, "global_step": result.global_step,
              "skip_warnings": [str(w.message) for w in caught if "skipping optimizer step" in str(w.message)],
              "weights_checksum": sum(float(p.double().abs().sum()) for p in model.parameters())}
    (out / f"rank{distributed.rank()}.json").write_text(json.dumps(record))
    distributed.barrier()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("model_dir")
    p.add_argument("out_dir")
    p.add_argument("--batch", type=int, required=True, help="per-device train batch size")
    p.add_argument("--jobs", nargs="+", default=["cosine", "mnrl"])
    a = p.parse_args()
    torch.set_num_threads(1)
    for job in a.jobs:
        run(job, a.model_dir, Path(a.out_dir) / job, a.batch)
    if distributed.is_distributed():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
