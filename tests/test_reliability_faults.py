"""Reliability catalogue, faults: SIGKILL during training and checkpoint writes, corrupt checkpoint files,
fp16 overflow, NaN losses and gradients. Each ends in a clear error or a loss-free resume, never a half file.

Already covered elsewhere (not repeated): exact mid-epoch resume and an invalid-JSON trainer_state.json
(test_trainer.py::test_resume_mid_epoch_is_exact, ::test_resume_true_picks_latest_and_corrupt_state_is_named),
a NaN loss raising or skipping (test_trainer.py::test_nan_loss_raises_or_skips).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import kill_worker
import tinyst
from tinyst import losses
from tinyst.trainer import checkpoint as ckpt
from tinyst.trainer.checkpoint import STALE, list_checkpoints, read_state
from tiny_models import make_tiny_model_dir

WORKER = Path(__file__).with_name("kill_worker.py")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The worker trains on one thread; so does the in-process part, so resumed runs compare bit for bit."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_model_dir(tmp_path_factory.mktemp("rf"), "bert", hidden_dropout_prob=0.1,
                               attention_probs_dropout_prob=0.1)


def weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def tree(folder: Path) -> list:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture(scope="module")
def reference(model_dir, tmp_path_factory):
    """The uninterrupted run: final weights and its output folder (checkpoints 9 and 12)."""
    out = tmp_path_factory.mktemp("ref") / "out"
    trainer = kill_worker.build_trainer(model_dir, out)
    trainer.train()
    return weights(trainer.model), out


# -- SIGKILL at >= 10 points: the last complete checkpoint loads and resuming loses nothing -------------------
FAST_KILLS = ["before:os.unlink:13", "half:torch.save:15", "before:os.replace@/checkpoint-12:1"]
SLOW_KILLS = [
    "before:step:2",  # before any checkpoint: nothing to resume, a fresh run
    "before:step:5",  # mid-training after checkpoint-3
    "before:step:11",  # after checkpoint-9, in epoch 1
    "half:save_file:1",  # checkpoint-3's model.safetensors torn: no checkpoint at all
    "half:torch.save:7",  # checkpoint-6's scheduler.pt torn
    "half:write_text@trainer_state.json:2",  # checkpoint-6's completion marker torn
    "half:write_text@modules.json.tmp:3",  # checkpoint-9's modules.json torn (inside model.save)
    "before:os.replace@/checkpoint-9:1",  # checkpoint-9 complete in its temp folder, never renamed
    "after:os.replace@/checkpoint-9:1",  # renamed, before rotation deletes checkpoint-3
    "timer:0.7", "timer:1.6",  # wherever the clock falls
]


@pytest.mark.parametrize("spec", FAST_KILLS + [pytest.param(s, marks=pytest.mark.slow) for s in SLOW_KILLS])
def test_sigkill_then_resume(spec, model_dir, reference, tmp_path):
    """SIGKILL at `spec`: each listed checkpoint is complete and loads; resuming reaches the uninterrupted weights."""
    ref_weights, ref_out = reference
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(WORKER), str(model_dir), str(out), spec], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if not spec.startswith("timer:"):  # the kill point must really be reached, or the test proves nothing
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    found = list_checkpoints(out)
    complete = tree(ref_out / "checkpoint-12")
    for folder in found:
        assert tree(folder) == complete, f"{folder} is listed but incomplete"
        tinyst.SentenceTransformer(str(folder), device="cpu")  # the model loads
        assert read_state(folder)["global_step"] == int(folder.name.split("-")[1])
        for f in folder.glob("*.pt*"):
            torch.load(f, weights_only=True)
    trainer = kill_worker.build_trainer(model_dir, out)
    trainer.train(resume_from_checkpoint=True if found else None)
    diff = max((weights(trainer.model)[k] - v).abs().max().item() for k, v in ref_weights.items())
    assert diff <= 1e-6, f"resumed run differs from the uninterrupted one by {diff}"
    assert list_checkpoints(out)[-1].name == "checkpoint-12"
    assert not [p.name for p in out.iterdir() if STALE.match(p.name)], "stale temp folders were left behind"


def test_rotation_never_deletes_a_listed_checkpoint_in_place(tmp_path, monkeypatch):
    """Rotation renames a checkpoint to a hidden name before deleting it, so a kill mid-delete hides it."""
    for step in (1, 2):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / ckpt.STATE_FILE).write_text("{}")
    seen, real = [], shutil.rmtree
    monkeypatch.setattr(shutil, "rmtree", lambda p, **kw: (seen.append(Path(p).name), real(p, **kw))[1])
    ckpt.rotate_checkpoints(tmp_path, 1)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-2"]
    assert seen and all(STALE.match(n) for n in seen), f"deleted in place: {seen}"


# -- corrupt checkpoint files: a clear error naming the file, nothing written -----------------------------------
def _write_garbage(p: Path):
    p.write_bytes(b"\x00garbage" * 10)


def _truncate(p: Path):
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _state_without_step(p: Path):
    state = json.loads(p.read_text())
    del state["global_step"]
    p.write_text(json.dumps(state))


def _foreign_optimizer(p: Path):  # a valid file from a different model: one parameter group of 1 tensor
    w = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.AdamW([w])
    w.grad = torch.ones(3)
    opt.step()
    torch.save(opt.state_dict(), p)


@pytest.mark.parametrize("name,damage,error,message", [
    ("optimizer.pt", _write_garbage, ValueError,
     r"optimizer\.pt could not be loaded with weights_only=True: corrupt, or holds more than tensors"),
    ("rng_state.pth", _truncate, ValueError, r"rng_state\.pth is not a readable torch file \(corrupt or truncated\?\)"),
    ("scheduler.pt", Path.unlink, FileNotFoundError, r"has no scheduler\.pt"),
    ("optimizer.pt", _foreign_optimizer, ValueError, r"optimizer\.pt does not fit this training run"),
    ("trainer_state.json", _state_without_step, ValueError, r"trainer_state\.json is corrupt: 'global_step'"),
    ("model.safetensors", _truncate, ValueError, r"model\.safetensors is not a readable safetensors file"),
], ids=["garbage optimizer", "truncated rng", "missing scheduler", "foreign optimizer", "state without step",
        "truncated model"])
def test_corrupt_checkpoint_file(name, damage, error, message, model_dir, reference, tmp_path):
    """A damaged checkpoint file stops resume with an error naming the file; the output folder is left untouched."""
    out = tmp_path / "out"
    shutil.copytree(reference[1] / "checkpoint-12", out / "checkpoint-12")
    damage(out / "checkpoint-12" / name)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    trainer = kill_worker.build_trainer(model_dir, out)
    with pytest.raises(error, match=message):
        trainer.train(resume_from_checkpoint=True)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


# -- fp16 overflow: the scaler skips the step, weights stay finite ------------------------------------------------
class BlowUpAt(losses.CosineSimilarityLoss):
    """CosineSimilarityLoss whose `at`-th call is multiplied by `factor` (inf, or a finite overflow)."""

    def __init__(self, model, at, factor):
        super().__init__(model)
        self.at, self.factor, self.calls = at, factor, 0

    def forward(self, features, labels):
        self.calls += 1
        out = super().forward(features, labels)
        return out * self.factor if self.calls == self.at else out


def scaler_run(model_dir, out, device, factor, fp16):
    model = tinyst.SentenceTransformer(str(model_dir), device=device)
    args = tinyst.SentenceTransformerTrainingArguments(
        output_dir=str(out), max_steps=4, per_device_train_batch_size=4, learning_rate=1e-3, save_strategy="no",
        fp16=fp16, disable_tqdm=True, use_cpu=device == "cpu")
    trainer = tinyst.SentenceTransformerTrainer(model=model, args=args, train_dataset=kill_worker.dataset(),
                                                loss=BlowUpAt(model, 2, factor))
    if not fp16:  # the trainer's fp16 path with a CPU GradScaler: same unscale_/step/update calls as on CUDA
        trainer.scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 16)
    trainer.train()
    return trainer


@pytest.mark.parametrize("factor", [float("inf"), 1e36])
def test_gradscaler_skips_overflowed_step_on_cpu(factor, model_dir, tmp_path):
    """An overflowing step (inf loss, or finite loss x scale beyond fp32) is skipped by the scaler: scale halves,
    Adam takes one step fewer than the trainer, every weight stays finite."""
    trainer = scaler_run(model_dir, tmp_path, "cpu", factor, fp16=False)
    assert trainer.scaler.get_scale() == 2.0 ** 15
    adam_steps = {int(s["step"]) for s in trainer.optimizer.state.values()}
    assert adam_steps == {trainer.state["global_step"] - 1} == {3}
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 training needs CUDA")
def test_fp16_overflow_skips_step_on_cuda(model_dir, tmp_path):
    """Real fp16 autocast on CUDA: a loss scaled past fp16's range is skipped by the GradScaler, weights finite."""
    trainer = scaler_run(model_dir, tmp_path, "cuda", 1e30, fp16=True)
    assert trainer.scaler.get_scale() < 2.0 ** 16
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


# -- NaN: named step and batch, or skipped; nothing saved from a poisoned step -----------------------------------
class NaNGradAt(losses.CosineSimilarityLoss):
    """A finite loss whose `at`-th call back-propagates NaN: d sqrt(x)/dx at x = 0 is inf, times 0."""

    def __init__(self, model, at):
        super().__init__(model)
        self.at, self.calls = at, 0

    def compute_loss_from_embeddings(self, embeddings, labels):
        self.calls += 1
        out = super().compute_loss_from_embeddings(embeddings, labels)
        if self.calls == self.at:
            out = out + torch.sqrt(((embeddings[0] - embeddings[0].detach()) ** 2).sum())
        return out


def nan_run(model_dir, out, loss_factory, **kw):
    model = tinyst.SentenceTransformer(str(model_dir), device="cpu")
    args = tinyst.SentenceTransformerTrainingArguments(
        output_dir=str(out), max_steps=6, per_device_train_batch_size=4, learning_rate=1e-3, save_steps=2,
        disable_tqdm=True, **kw)
    trainer = tinyst.SentenceTransformerTrainer(model=model, args=args, train_dataset=kill_worker.dataset(),
                                                loss=loss_factory(model))
    return trainer


def test_nan_gradient_with_finite_loss_raises_naming_step_and_batch(model_dir, tmp_path):
    """A finite loss with a NaN gradient stops at that step, naming step, epoch, batch and dataset; checkpoints
    saved before it stay, none is written from the poisoned step."""
    trainer = nan_run(model_dir, tmp_path / "out", lambda m: NaNGradAt(m, 3))
    with pytest.raises(FloatingPointError,
                       match=r"gradient norm is nan at step 3 \(epoch 0, batch 2\); set nan_loss='skip'"):
        trainer.train()
    assert [p.name for p in list_checkpoints(tmp_path / "out")] == ["checkpoint-2"]


def test_nan_gradient_skipped_by_option(model_dir, tmp_path):
    """nan_loss='skip': the NaN-gradient step is skipped with a warning and no weight becomes NaN."""
    trainer = nan_run(model_dir, tmp_path / "out", lambda m: NaNGradAt(m, 3), nan_loss="skip")
    with pytest.warns(UserWarning, match="skipping optimizer step 3: gradient norm is nan"):
        trainer.train()
    assert trainer.state["global_step"] == 6
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert {int(s["step"]) for s in trainer.optimizer.state.values()} == {5}
