"""A small training run that SIGKILLs itself at a chosen point, for tests/test_reliability_faults.py.

    python tests/kill_worker.py MODEL_DIR OUT_DIR SPEC

SPEC is "none", "timer:SECONDS", or "WHEN:TARGET[@MATCH]:K": SIGKILL at the K-th call of TARGET (among calls
whose identifying argument contains MATCH), where WHEN is
    before  kill just before the call runs;
    after   kill just after it returned;
    half    write only the first half of the file the call would write, then kill (a torn write).
TARGET is one of TARGETS below. `build_trainer` is shared with the test, which resumes in-process.
"""
import io
import os
import random
import shutil
import signal
import sys
import threading
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tinyst  # noqa: E402
import tinyst.models.weights as weights  # noqa: E402
from tinyst import losses  # noqa: E402
from tinyst.training_args import SentenceTransformerTrainingArguments  # noqa: E402
from tiny_models import corpus  # noqa: E402

MAX_STEPS, SAVE_STEPS = 12, 3  # 10 batches per epoch: checkpoints at 3, 6, 9 (epoch 0) and 12 (epoch 1)


def dataset():
    lines = [s.split("\n")[0][:60] for s in corpus()]
    rng = random.Random(0)
    rows = [(rng.choice(lines), rng.choice(lines), round(rng.random(), 3)) for _ in range(40)]
    return tinyst.Dataset.from_dict({"sentence1": [r[0] for r in rows], "sentence2": [r[1] for r in rows],
                                     "score": [r[2] for r in rows]})


def build_trainer(model_dir, out_dir):
    model = tinyst.SentenceTransformer(str(model_dir), device="cpu")
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out_dir), max_steps=MAX_STEPS, per_device_train_batch_size=4, learning_rate=1e-3,
        warmup_ratio=0.2, save_steps=SAVE_STEPS, save_total_limit=2, logging_steps=3, seed=5, disable_tqdm=True)
    return tinyst.SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset(),
                                             loss=losses.CoSENTLoss(model))


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def _half_torch_save(real, obj, f, *a, **kw):
    buf = io.BytesIO()
    real(obj, buf, *a, **kw)
    Path(f).write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])


def _half_save_file(real, tensors, filename, *a, **kw):
    real(tensors, filename, *a, **kw)
    with open(filename, "r+b") as fh:
        fh.truncate(os.path.getsize(filename) // 2)


def _half_write_text(real, self, data, *a, **kw):
    real(self, data[: len(data) // 2], *a, **kw)


# name -> (owner, attribute, index of the argument that identifies a call, torn-write variant or None)
TARGETS = {
    "step": (tinyst.SentenceTransformerTrainer, "training_step", None, None),
    "torch.save": (torch, "save", 1, _half_torch_save),
    "save_file": (weights, "save_file", 1, _half_save_file),
    "write_text": (Path, "write_text", 0, _half_write_text),
    "os.replace": (os, "replace", 1, None),  # identified by the destination
    "os.unlink": (os, "unlink", 0, None),
    "rmtree": (shutil, "rmtree", 0, None),
}


def install(spec: str) -> None:
    if spec == "none":
        return
    if spec.startswith("timer:"):
        timer = threading.Timer(float(spec.split(":")[1]), die)
        timer.daemon = True
        timer.start()
        return
    when, target, k = spec.split(":")
    name, _, match = target.partition("@")
    owner, attr, arg_index, half = TARGETS[name]
    real, k, seen = getattr(owner, attr), int(k), [0]

    def wrapper(*args, **kwargs):
        ident = str(args[arg_index]) if arg_index is not None and len(args) > arg_index else ""
        if match in ident:
            seen[0] += 1
            if seen[0] == k:
                if when == "before":
                    die()
                if when == "half":
                    half(real, *args, **kwargs)
                    die()
                out = real(*args, **kwargs)
                die()
                return out
        return real(*args, **kwargs)

    setattr(owner, attr, wrapper)


if __name__ == "__main__":
    model_dir, out_dir, spec = sys.argv[1:4]
    torch.set_num_threads(1)
    trainer = build_trainer(model_dir, out_dir)
    install(spec)
    trainer.train()
