"""Legacy model.fit(train_objectives=[(DataLoader of InputExamples, loss)]) on tiny models: what it builds
(vs ST 3.4.1's own fit with its trainer stubbed out), equality with a direct trainer run, round robin,
the evaluation schedule, save-best to output_path, and bad input."""
import random

import pytest
import torch
from torch.utils.data import DataLoader

import tinyst
from tinyst import InputExample, losses
from tinyst.evaluation import EmbeddingSimilarityEvaluator
from tinyst.training_args import SentenceTransformerTrainingArguments as Args
from tiny_models import corpus, make_tiny_model_dir


def rows(n, seed=0):
    lines = [s.split("\n")[0][:80] for s in corpus()]
    rng = random.Random(seed)
    return [(rng.choice(lines), rng.choice(lines), round(rng.random(), 3)) for _ in range(n)]


def examples(n, seed=0, labelled=True, cls=InputExample):
    return [cls(texts=[a, b], label=s if labelled else 0) for a, b, s in rows(n, seed)]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_model_dir(tmp_path_factory.mktemp("fit"), "bert")


def model_at(path):
    return tinyst.SentenceTransformer(str(path), device="cpu")


def weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_fit_equals_direct_trainer_run(tiny_dir, tmp_path):
    """fit() over a shuffled DataLoader of InputExamples ends with the equivalent trainer run's weights (<= 1e-6)."""
    model = model_at(tiny_dir)
    start = weights(model)
    loader = DataLoader(examples(48), batch_size=8, shuffle=True)
    model.fit([(loader, losses.CosineSimilarityLoss(model))], epochs=2, scheduler="WarmupCosine", warmup_steps=3,
              optimizer_params={"lr": 1e-3}, show_progress_bar=False)
    direct = model_at(tiny_dir)
    data = rows(48)
    ds = tinyst.Dataset.from_dict({"sentence_0": [r[0] for r in data], "sentence_1": [r[1] for r in data],
                                   "label": [r[2] for r in data]})
    args = Args(output_dir=str(tmp_path / "direct"), per_device_train_batch_size=8, num_train_epochs=2,
                learning_rate=1e-3, weight_decay=0.01, warmup_steps=3, lr_scheduler_type="cosine",
                multi_dataset_batch_sampler="round_robin", save_strategy="no", disable_tqdm=True)
    tinyst.SentenceTransformerTrainer(model=direct, args=args, train_dataset={"_dataset_1": ds},
                                      loss={"_dataset_1": losses.CosineSimilarityLoss(direct)}).train()
    a, b = weights(model), weights(direct)
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-6
    assert max((a[k] - start[k]).abs().max().item() for k in a) > 1e-3  # it did train


def test_fit_builds_what_st_fit_builds(tiny_dir, tmp_path, monkeypatch):
    """Datasets, loss keys, arguments, decay groups and LR schedule equal those ST 3.4.1's fit hands its trainer."""
    import sentence_transformers
    import sentence_transformers.trainer as st_trainer

    seen = {}

    class Recorder:  # stands in for ST's trainer: records what fit() built, trains nothing
        def __init__(self, **kwargs):
            seen.update(kwargs)
            self.callback_handler = type("H", (), {"callbacks": []})()

        def add_callback(self, cb):
            pass

        def train(self):
            pass

    monkeypatch.setattr(st_trainer, "SentenceTransformerTrainer", Recorder)
    st_model = sentence_transformers.SentenceTransformer(str(tiny_dir), device="cpu")
    st_losses, st_example = sentence_transformers.losses, sentence_transformers.InputExample
    st_ex = [examples(32, 1, cls=st_example), examples(16, 2, False, st_example)]
    st_model.fit([(DataLoader(st_ex[0], batch_size=4), st_losses.CosineSimilarityLoss(st_model)),
                  (DataLoader(st_ex[1], batch_size=4), st_losses.MultipleNegativesRankingLoss(st_model))],
                 steps_per_epoch=5, scheduler="warmupconstant", warmup_steps=5, weight_decay=0.1, max_grad_norm=0.5,
                 checkpoint_path=str(tmp_path / "st"), checkpoint_save_steps=7, checkpoint_save_total_limit=2)
    built = {}
    monkeypatch.setattr(tinyst.SentenceTransformerTrainer, "train", lambda self, *a, **k: built.update(t=self))
    model = model_at(tiny_dir)
    model.fit([(DataLoader(examples(32, 1), batch_size=4), losses.CosineSimilarityLoss(model)),
               (DataLoader(examples(16, 2, False), batch_size=4), losses.MultipleNegativesRankingLoss(model))],
              steps_per_epoch=5, scheduler="warmupconstant", warmup_steps=5, weight_decay=0.1, max_grad_norm=0.5,
              checkpoint_path=str(tmp_path / "ts"), checkpoint_save_steps=7, checkpoint_save_total_limit=2)
    trainer = built["t"]
    assert list(trainer.train_dataset) == list(seen["train_dataset"]) == ["_dataset_1", "_dataset_2"]
    for name, ds in seen["train_dataset"].items():
        assert trainer.train_dataset[name].to_dict() == ds.to_dict()  # incl. no label column for all-0 labels
    assert list(trainer.loss) == list(seen["loss"])
    st_args, args = seen["args"], trainer.args
    for key in ("per_device_train_batch_size", "num_train_epochs", "max_steps", "max_grad_norm", "save_strategy",
                "save_steps", "fp16", "batch_sampler", "multi_dataset_batch_sampler"):
        assert getattr(args, key) == getattr(st_args, key), key
    assert (args.save_total_limit, st_args.save_total_limit, args.max_steps) == (2, 2, 5)
    st_opt, st_sched = seen["optimizers"]
    from tinyst.trainer.optim import build_optimizer, build_scheduler

    opt = build_optimizer(trainer.router, args)
    numel = lambda o: [(g["weight_decay"], sum(p.numel() for p in g["params"])) for g in o.param_groups]  # noqa: E731
    assert numel(opt) == numel(st_opt)
    assert [g["initial_lr"] for g in st_opt.param_groups] == [args.learning_rate] * 2 == [2e-5] * 2
    sched = build_scheduler(opt, args, 30)
    assert [sched.lr_lambdas[0](s) for s in range(30)] == pytest.approx([st_sched.lr_lambdas[0](s) for s in range(30)])


class Recording(losses.CosineSimilarityLoss):
    def __init__(self, model, tag, calls):
        super().__init__(model)
        self.tag, self.calls = tag, calls

    def forward(self, features, labels=None):
        self.calls.append(self.tag)
        return super().forward(features, labels)


def test_two_objectives_take_turns(tiny_dir):
    """Two objectives alternate batch by batch and an epoch stops when the smaller one runs out (ROUND_ROBIN)."""
    model, calls = model_at(tiny_dir), []
    objectives = [(DataLoader(examples(48, 1), batch_size=8), Recording(model, 1, calls)),
                  (DataLoader(examples(24, 2), batch_size=8), Recording(model, 2, calls))]
    model.fit(objectives, epochs=2, warmup_steps=0, show_progress_bar=False)
    # 6 and 3 batches: 1 2 1 2 1 2, then objective 1's 4th batch is drawn before 2 is found empty
    assert calls == [1, 2, 1, 2, 1, 2, 1] * 2


def test_evaluation_schedule_save_best_and_loss_goes_down(tiny_dir, tmp_path):
    """The evaluator runs every evaluation_steps and at each epoch end; output_path holds the best-scoring model."""
    model = model_at(tiny_dir)
    data = examples(48)
    evaluator = EmbeddingSimilarityEvaluator([e.texts[0] for e in data], [e.texts[1] for e in data],
                                             [e.label for e in data], name="train")
    loss = losses.CosineSimilarityLoss(model)
    ds = tinyst.Dataset.from_dict({"a": [e.texts[0] for e in data], "b": [e.texts[1] for e in data],
                                   "label": [e.label for e in data]})

    def full_loss():
        with torch.no_grad():
            model.eval()
            return loss([model.tokenize(ds["a"]), model.tokenize(ds["b"])], torch.tensor(ds["label"])).item()

    before, scores = full_loss(), []
    model.fit([(DataLoader(data, batch_size=8, shuffle=True), loss)], evaluator=evaluator, epochs=3,
              evaluation_steps=4, warmup_steps=0, optimizer_params={"lr": 2e-3}, output_path=str(tmp_path / "best"),
              callback=lambda score, epoch, steps: scores.append((score, epoch, steps)), show_progress_bar=False)
    assert full_loss() < 0.5 * before
    # 6 steps per epoch: every 4th step plus the epoch ends 6, 12, 18 (step 12 once)
    assert [s for _, _, s in scores] == [4, 6, 8, 12, 16, 18]
    assert [e for _, e, _ in scores] == pytest.approx([4 / 6, 1, 1 + 2 / 6, 2, 2 + 4 / 6, 3])
    saved = model_at(tmp_path / "best")
    assert evaluator(saved)[evaluator.primary_metric] == pytest.approx(max(s for s, _, _ in scores), abs=1e-6)


def test_no_evaluator_saves_final_model(tiny_dir, tmp_path):
    """Without an evaluator, output_path gets the model as it is at the end of training."""
    model = model_at(tiny_dir)
    model.fit([(DataLoader(examples(16), batch_size=8), losses.CosineSimilarityLoss(model))], warmup_steps=0,
              optimizer_params={"lr": 1e-3}, output_path=str(tmp_path / "out"), show_progress_bar=False)
    a, b = weights(model), weights(model_at(tmp_path / "out"))
    assert max((a[k] - b[k]).abs().max().item() for k in a) == 0


def test_other_optimizer_and_steps_per_epoch(tiny_dir, monkeypatch):
    """optimizer_class/params beyond AdamW's arguments build that optimizer on the same decay groups;
    steps_per_epoch with epochs > 1 is ignored with a warning, as in ST 3.x."""
    built = {}
    monkeypatch.setattr(tinyst.SentenceTransformerTrainer, "train", lambda self, *a, **k: built.update(t=self))
    model = model_at(tiny_dir)
    with pytest.warns(UserWarning, match="steps_per_epoch is ignored when epochs > 1"):
        model.fit([(DataLoader(examples(8), batch_size=4), losses.CosineSimilarityLoss(model))], epochs=2,
                  steps_per_epoch=1, optimizer_class=torch.optim.SGD, optimizer_params={"lr": 0.1, "momentum": 0.9},
                  weight_decay=0.05)
    trainer = built["t"]
    opt = trainer.optimizer
    assert type(opt) is torch.optim.SGD and trainer.args.max_steps == -1
    groups = [(g["lr"], g["momentum"], g["weight_decay"]) for g in opt.param_groups]
    assert groups == [(0.1, 0.9, 0.05), (0.1, 0.9, 0.0)]
    no_decay = {id(p) for m in model.modules() for n, p in m.named_parameters(recurse=False)
                if isinstance(m, torch.nn.LayerNorm) or n == "bias"}
    assert {id(p) for p in opt.param_groups[1]["params"]} == no_decay
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))


def test_bad_input_is_named(tiny_dir):
    """Unknown scheduler, mixed text counts, non-examples and an empty objective list raise clear errors."""
    model = model_at(tiny_dir)
    loss = losses.CosineSimilarityLoss(model)
    good = DataLoader(examples(8), batch_size=4)
    with pytest.raises(ValueError, match="unknown scheduler 'linear'"):
        model.fit([(good, loss)], scheduler="linear")
    mixed = [InputExample(texts=["a", "b"], label=1.0), InputExample(texts=["a", "b", "c"], label=1.0)]
    with pytest.raises(ValueError, match="example 1 has 3 texts but example 0 has 2"):
        model.fit([(DataLoader(mixed, batch_size=2), loss)])
    with pytest.raises(TypeError, match="example 0 must be an InputExample"):
        model.fit([(DataLoader([("a", "b")], batch_size=1), loss)])
    with pytest.raises(ValueError, match="non-empty list of \\(DataLoader, loss\\) pairs"):
        model.fit([])
