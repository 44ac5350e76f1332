"""The trainer on tiny models: exact resume, accumulation equivalence, bf16 on CPU, logging,
callbacks, best-model tracking and rotation, NaN handling, multi-dataset loss dicts, prompts."""
import json
import random

import pytest
import torch

import tinyst
from tinyst import losses
from tinyst.training_args import SentenceTransformerTrainingArguments as Args
from tiny_models import corpus, make_tiny_model_dir


def pairs(n=48, seed=0):
    lines = [s.split("\n")[0][:80] for s in corpus()]
    rng = random.Random(seed)
    rows = [(rng.choice(lines), rng.choice(lines), round(rng.random(), 3)) for _ in range(n)]
    return tinyst.Dataset.from_dict({"sentence1": [r[0] for r in rows], "sentence2": [r[1] for r in rows],
                                     "score": [r[2] for r in rows]})


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_model_dir(tmp_path_factory.mktemp("tr"), "bert", hidden_dropout_prob=0.1,
                               attention_probs_dropout_prob=0.1)


def model_at(path):
    return tinyst.SentenceTransformer(str(path), device="cpu")


def weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def max_weight_diff(a, b):
    return max((a[k] - b[k]).abs().max().item() for k in a)


def run(tiny_dir, tmp_path, name, data=None, loss_cls=losses.CoSENTLoss, resume=None, **kw):
    model = model_at(tiny_dir)
    defaults = dict(output_dir=str(tmp_path / name), num_train_epochs=2, per_device_train_batch_size=8,
                    learning_rate=1e-3, warmup_ratio=0.2, logging_steps=2, save_steps=5, seed=3, disable_tqdm=True)
    args = Args(**{**defaults, **kw})
    trainer = tinyst.SentenceTransformerTrainer(model=model, args=args, train_dataset=data or pairs(),
                                                loss=loss_cls(model))
    trainer.train(resume_from_checkpoint=resume)
    return model, trainer


def test_resume_mid_epoch_is_exact(tiny_dir, tmp_path):
    """Resuming from a mid-epoch checkpoint (dropout on) ends with the uninterrupted run's weights (<= 1e-6)."""
    full, _ = run(tiny_dir, tmp_path, "full")
    ckpt = tmp_path / "full" / "checkpoint-5"  # 6 batches per epoch: step 5 is mid-epoch 0
    state = json.loads((ckpt / "trainer_state.json").read_text())
    assert state["global_step"] == 5 and state["epoch_index"] == 0 and state["batches_in_epoch"] == 5
    resumed, _ = run(tiny_dir, tmp_path, "resumed", resume=str(ckpt))
    assert max_weight_diff(weights(full), weights(resumed)) <= 1e-6


def test_resume_true_picks_latest_and_corrupt_state_is_named(tiny_dir, tmp_path):
    """resume_from_checkpoint=True takes the newest complete checkpoint; a corrupt state file is a clear error."""
    run(tiny_dir, tmp_path, "a", num_train_epochs=1)
    (tmp_path / "a" / "checkpoint-5" / "trainer_state.json").write_text("{not json")
    with pytest.raises(ValueError, match="trainer_state.json is corrupt"):
        run(tiny_dir, tmp_path, "a", num_train_epochs=1, resume=True)


def no_dropout_run(tiny_dir, tmp_path, name, batch, accum):
    model = model_at(tiny_dir)
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    for block in model[0].auto_model.blocks:
        block.attn.dropout = 0.0
    args = Args(output_dir=str(tmp_path / name), num_train_epochs=1, per_device_train_batch_size=batch,
                gradient_accumulation_steps=accum, learning_rate=1e-3, save_strategy="no", seed=3, disable_tqdm=True)
    tinyst.SentenceTransformerTrainer(model=model, args=args, train_dataset=pairs(),
                                      loss=losses.CosineSimilarityLoss(model)).train()
    return weights(model)


def test_gradient_accumulation_equals_big_batch(tiny_dir, tmp_path):
    """For a per-row mean loss, batch 4 x 2 accumulation steps equals batch 8: the sampler puts the same
    rows in batches 2i, 2i+1 of size 4 as in batch i of size 8, and the step averages (dropout off)."""
    big = no_dropout_run(tiny_dir, tmp_path, "big", 8, 1)
    small = no_dropout_run(tiny_dir, tmp_path, "small", 4, 2)
    # equal up to fp32 summation order (mean of half-batch means), which Adam's normalisation can amplify
    assert max_weight_diff(big, small) <= 2e-5


def test_bf16_autocast_on_cpu(tiny_dir, tmp_path):
    """bf16 autocast steps run on CPU: finite logged losses, fp32 master weights that moved."""
    before = weights(model_at(tiny_dir))
    model, trainer = run(tiny_dir, tmp_path, "bf16", bf16=True, num_train_epochs=1, save_strategy="no")
    assert trainer.amp_dtype == torch.bfloat16
    losses_logged = [e["loss"] for e in trainer.log.history if "loss" in e]
    assert losses_logged and all(torch.isfinite(torch.tensor(losses_logged)))
    after = weights(model)
    assert all(v.dtype == torch.float32 for v in after.values())
    assert max_weight_diff(before, after) > 1e-4


def test_fp16_on_cpu_is_refused(tiny_dir, tmp_path):
    """fp16 needs CUDA: on CPU the error says so and points to bf16."""
    if torch.cuda.is_available():
        pytest.skip("has CUDA")
    with pytest.raises(ValueError, match="fp16.*CUDA.*bf16"):
        run(tiny_dir, tmp_path, "fp16", fp16=True)


def test_logs_callbacks_and_eval(tiny_dir, tmp_path):
    """Logs carry loss/grad_norm/learning_rate/epoch, evaluator metrics are eval_-prefixed, callbacks fire, JSONL written."""
    from tinyst.evaluation import EmbeddingSimilarityEvaluator

    seen = {"on_log": 0, "on_evaluate": 0, "on_save": 0, "on_train_begin": 0, "on_train_end": 0}

    class Counter:
        def __getattr__(self, name):
            if name not in seen:
                raise AttributeError(name)
            return lambda args, state, **kw: seen.__setitem__(name, seen[name] + 1)

    data = pairs()
    ev = EmbeddingSimilarityEvaluator(data["sentence1"][:16], data["sentence2"][:16], data["score"][:16], name="dev")
    model = model_at(tiny_dir)
    args = Args(output_dir=str(tmp_path / "logs"), num_train_epochs=1, per_device_train_batch_size=8, logging_steps=2,
                eval_strategy="steps", eval_steps=3, save_steps=3, disable_tqdm=True)
    trainer = tinyst.SentenceTransformerTrainer(model=model, args=args, train_dataset=data, eval_dataset=data,
                                                evaluator=ev, callbacks=[Counter()])
    assert isinstance(trainer.loss, losses.CoSENTLoss)  # ST's default loss
    trainer.train()
    train_logs = [e for e in trainer.log.history if "loss" in e]
    assert {"loss", "grad_norm", "learning_rate", "epoch", "step"} <= train_logs[0].keys()
    evals = [e for e in trainer.log.history if "eval_loss" in e]
    assert len(evals) == 2 and "eval_dev_spearman_cosine" in evals[0]
    lines = (tmp_path / "logs" / "log.jsonl").read_text().splitlines()
    assert len(lines) == len(trainer.log.history)
    assert seen["on_evaluate"] == 2 and seen["on_save"] == 2 and seen["on_train_begin"] == seen["on_train_end"] == 1
    assert seen["on_log"] == len(trainer.log.history)
    state = json.loads((tmp_path / "logs" / "checkpoint-6" / "trainer_state.json").read_text())
    assert [e["step"] for e in state["log_history"]][:2] == [2, 3]


def test_transformers_style_callback_reads_state_and_stops_training(tiny_dir, tmp_path):
    """A callback written for transformers' Trainer (control positional, state.global_step / state.epoch)
    runs unchanged, and control.should_training_stop ends training after that step."""
    calls = []

    class StopAtThree:  # the shape of a transformers.TrainerCallback subclass
        def on_step_end(self, args, state, control, **kwargs):
            calls.append((state.global_step, state["global_step"], round(state.epoch, 4)))
            if state.global_step == 3:
                control.should_training_stop = True
            return control

    data = pairs()  # 48 rows: 6 steps per epoch at batch 8
    args = Args(output_dir=str(tmp_path / "stop"), num_train_epochs=2, per_device_train_batch_size=8,
                save_strategy="no", disable_tqdm=True)
    trainer = tinyst.SentenceTransformerTrainer(model=model_at(tiny_dir), args=args, train_dataset=data,
                                                callbacks=[StopAtThree()])
    out = trainer.train()
    assert out.global_step == 3 and [c[0] for c in calls] == [1, 2, 3]
    assert all(a == b for a, b, _ in calls) and calls[-1][2] == pytest.approx(3 * 8 / len(data), abs=1e-4)
    with pytest.raises(AttributeError, match="no 'nope'"):
        trainer.state.nope


def test_best_model_kept_by_rotation_and_loaded(tiny_dir, tmp_path):
    """save_total_limit=1 rotates old checkpoints but keeps the best; load_best_model_at_end restores it."""
    data = pairs()
    model = model_at(tiny_dir)
    args = Args(output_dir=str(tmp_path / "best"), num_train_epochs=3, per_device_train_batch_size=8, eval_strategy="steps",
                eval_steps=2, save_steps=2, save_total_limit=1, load_best_model_at_end=True, learning_rate=5e-3,
                disable_tqdm=True)
    trainer = tinyst.SentenceTransformerTrainer(model=model, args=args, train_dataset=data, eval_dataset=data)
    trainer.train()
    best = trainer.state["best_model_checkpoint"]
    evals = [e["eval_loss"] for e in trainer.log.history if "eval_loss" in e]
    assert trainer.state["best_metric"] == min(evals)
    kept = sorted(p.name for p in (tmp_path / "best").glob("checkpoint-*"))
    assert best.split("/")[-1] in kept and len(kept) <= 2
    reloaded = tinyst.SentenceTransformer(best, device="cpu")
    assert max_weight_diff(weights(reloaded), weights(model)) == 0


@pytest.mark.parametrize(
    "kwargs,msg",
    [(dict(eval_strategy="sometimes"), "eval_strategy"), (dict(save_strategy="never"), "save_strategy"),
     (dict(learning_rate=0), "learning_rate"), (dict(per_device_train_batch_size=0), "per_device_train_batch_size"),
     (dict(fp16=True, bf16=True), "fp16 and bf16"), (dict(lr_scheduler_type="warp"), "lr_scheduler_type"),
     (dict(load_best_model_at_end=True), "eval_strategy is 'no'"),
     (dict(load_best_model_at_end=True, eval_strategy="steps", eval_steps=3, save_steps=5), "multiple of eval_steps"),
     (dict(load_best_model_at_end=True, eval_strategy="epoch", save_strategy="steps"), "save_strategy == eval_strategy"),
     (dict(batch_sampler="shuffle_twice"), "BatchSamplers"), (dict(warmup_ratio=1.5), "warmup_ratio")],
)
def test_contradictory_arguments(kwargs, msg):
    """Bad or contradictory training arguments fail at construction with a message naming them."""
    with pytest.raises(ValueError, match=msg):
        Args(output_dir="x", **kwargs)


def test_nan_loss_raises_or_skips(tiny_dir, tmp_path):
    """A NaN loss stops training naming the step (default) or skips that optimizer step (nan_loss='skip')."""
    class NaNAtStep3(losses.CosineSimilarityLoss):
        calls = 0

        def forward(self, features, labels):
            NaNAtStep3.calls += 1
            out = super().forward(features, labels)
            return out * float("nan") if NaNAtStep3.calls == 3 else out

    with pytest.raises(FloatingPointError, match="step 3"):
        run(tiny_dir, tmp_path, "nan", loss_cls=NaNAtStep3, save_strategy="no")
    NaNAtStep3.calls = 0
    with pytest.warns(UserWarning, match="skipping optimizer step 3"):
        model, _ = run(tiny_dir, tmp_path, "nan2", loss_cls=NaNAtStep3, save_strategy="no", nan_loss="skip")
    assert all(torch.isfinite(v).all() for v in weights(model).values())


def test_loss_dict_multi_dataset_and_prompts(tiny_dir, tmp_path):
    """A dict of datasets with a dict of losses trains; each batch goes to its dataset's loss with its prompts."""
    model = model_at(tiny_dir)
    seen = []

    class Spy(losses.CosineSimilarityLoss):
        def forward(self, features, labels):
            seen.append((self.tag, features[0]["input_ids"][0].tolist()))
            return super().forward(features, labels)

    a, b = Spy(model), Spy(model)
    a.tag, b.tag = "a", "b"
    args = Args(output_dir=str(tmp_path / "multi"), num_train_epochs=1, per_device_train_batch_size=8,
                save_strategy="no", prompts={"b": {"sentence1": "query: "}}, disable_tqdm=True)
    trainer = tinyst.SentenceTransformerTrainer(model=model, args=args, train_dataset={"a": pairs(16), "b": pairs(24, 1)},
                                                loss={"a": a, "b": b})
    trainer.train()
    assert sorted(t for t, _ in seen) == ["a"] * 2 + ["b"] * 3
    query_ids = model.tokenize(["query: x"])["input_ids"][0, 1:3].tolist()
    assert all((ids[1:3] == query_ids) == (t == "b") for t, ids in seen)


def test_save_model_writes_the_trained_model(tiny_dir, tmp_path):
    """trainer.save_model() writes the trained weights to output_dir (or the folder given), loadable by both."""
    from sentence_transformers import SentenceTransformer as STModel

    model, trainer = run(tiny_dir, tmp_path, "sm", max_steps=3, save_strategy="no")
    trainer.save_model()
    trainer.save_model(str(tmp_path / "elsewhere"))
    for folder in (tmp_path / "sm", tmp_path / "elsewhere"):
        assert max_weight_diff(weights(model), weights(model_at(folder))) == 0
        assert max_weight_diff(weights(model), weights(model_at(tiny_dir))) > 1e-4  # it trained
    texts = ["a b c", "d e"]
    st_emb = STModel(str(tmp_path / "sm"), device="cpu").encode(texts)
    assert abs(st_emb - model.encode(texts)).max() <= 1e-5
