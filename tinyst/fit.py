"""Legacy `model.fit(train_objectives=[(dataloader, loss), ...])`, run by the SentenceTransformerTrainer.

Mirrors `sentence_transformers/fit_mixin.py` (`FitMixin.fit`) and `readers/InputExample.py` v3.4: each
DataLoader of InputExamples becomes a dataset `_dataset_{i}` with columns sentence_0..k (+ label, unless every
label is 0); objectives take turns batch by batch (ROUND_ROBIN); the batch size comes from the loader; AdamW
without decay on biases and LayerNorm; the pre-v3 scheduler names; use_amp -> fp16; the evaluator runs every
`evaluation_steps` and at the end of each epoch; output_path gets the best model by the evaluator's primary
metric (or the final model when there is no evaluator, or save_best_model=False).
Different on purpose: the schedule spans the real number of steps (ST 3.4 sizes it as min(len // batch_size) *
epochs, so with k objectives a linear decay reaches 0 after 1/k of training); examples with differing numbers
of texts are an error (ST's zip silently drops texts); evaluator CSVs go to checkpoint_path/eval, since save()
replaces output_path as a whole.
Not included: `old_fit`, resuming; NoDuplicatesDataLoader / SentenceLabelDataset are recognised by class name.
"""
import shutil
import tempfile
import warnings

import torch

SCHEDULERS = {"constantlr": "constant", "warmupconstant": "constant_with_warmup", "warmuplinear": "linear",
              "warmupcosine": "cosine", "warmupcosinewithhardrestarts": "cosine_with_restarts"}


class InputExample:
    """One example of the pre-v3 API: its texts and a label (0 = no label)."""

    def __init__(self, guid: str = "", texts=None, label=0):
        self.guid, self.texts, self.label = guid, texts, label

    def __str__(self) -> str:
        return f"<InputExample> label: {self.label}, texts: {'; '.join(self.texts)}"


def examples_to_dataset(loader, name: str = "train_objectives"):
    """The InputExamples behind a DataLoader (or any iterable of them) as a Dataset: sentence_0..k [, label]."""
    from tinyst.datasets import Dataset

    items = getattr(loader, "dataset", None)
    items = items if items is not None else getattr(loader, "train_examples", loader)  # NoDuplicatesDataLoader
    examples = [e for item in items for e in (item if isinstance(item, (list, tuple)) else [item])]
    if not examples:
        raise ValueError(f"{name}: the DataLoader holds no examples")
    for i, e in enumerate(examples):
        texts = getattr(e, "texts", None)
        if not isinstance(texts, (list, tuple)) or not texts or not all(isinstance(t, str) for t in texts):
            raise TypeError(f"{name}: example {i} must be an InputExample with a non-empty list of str texts, "
                            f"got {e!r:.80}")
        if len(texts) != len(examples[0].texts):
            raise ValueError(f"{name}: example {i} has {len(texts)} texts but example 0 has {len(examples[0].texts)}")
    columns = {f"sentence_{k}": [e.texts[k] for e in examples] for k in range(len(examples[0].texts))}
    labels = [e.label.tolist() if hasattr(e.label, "tolist") else e.label for e in examples]  # numpy/torch -> python
    try:
        unlabelled = set(labels) == {0}  # InputExample's default label: the loss takes none
    except TypeError:  # unhashable (vector) labels
        unlabelled = False
    return Dataset.from_dict(columns if unlabelled else {**columns, "label": labels})


class FitCallback:
    """ST's EvaluatorCallback + SaveModelCallback + OriginalCallback in one: evaluate every `evaluation_steps`
    and at each epoch end, save the best model to output_path, call `callback(score, epoch, steps)`."""

    def __init__(self, trainer, evaluator, evaluation_steps, output_path, save_best_model, callback):
        self.trainer, self.evaluator, self.every, self.callback = trainer, evaluator, evaluation_steps, callback
        self.output_path, self.save_best_model, self.best = output_path, save_best_model, None
        args = trainer.args
        self.n_batches = len(trainer.loader(trainer.train_dataset, args.per_device_train_batch_size, args.seed))

    def on_step_end(self, args, state, **kwargs) -> None:
        step, done = state["global_step"], state["batches_in_epoch"]
        epoch_end = done >= self.n_batches or step >= state["max_steps"]
        if self.evaluator is not None and (epoch_end or (self.every > 0 and step % self.every == 0)):
            self.trainer.evaluate(epoch=state["epoch_index"] + done / self.n_batches)

    def on_evaluate(self, args, state, metrics=None, **kwargs) -> None:
        primary = getattr(self.evaluator, "primary_metric", None) or "evaluator"
        score = next((v for k, v in (metrics or {}).items() if k.endswith(primary)), None)
        if score is None:
            return
        if self.callback is not None:
            self.callback(score, metrics.get("epoch"), state["global_step"])
        greater = getattr(self.evaluator, "greater_is_better", True)
        if self.best is None or (score > self.best if greater else score < self.best):
            self.best = score
            if self.output_path is not None and self.save_best_model:
                self.trainer.model.save(self.output_path)

    def on_train_end(self, args, state, **kwargs) -> None:
        if self.output_path is not None and (self.evaluator is None or not self.save_best_model):
            self.trainer.model.save(self.output_path)


def fit(model, train_objectives, evaluator=None, epochs: int = 1, steps_per_epoch=None, scheduler: str = "WarmupLinear",
        warmup_steps: int = 10000, optimizer_class=torch.optim.AdamW, optimizer_params=None, weight_decay: float = 0.01,
        evaluation_steps: int = 0, output_path=None, save_best_model: bool = True, max_grad_norm: float = 1,
        use_amp: bool = False, callback=None, show_progress_bar: bool = True, checkpoint_path=None,
        checkpoint_save_steps: int = 500, checkpoint_save_total_limit: int = 0) -> None:
    """Train `model` on [(DataLoader of InputExamples, loss), ...] the pre-v3 way (see the module docstring)."""
    from tinyst.trainer import SentenceTransformerTrainer
    from tinyst.trainer.optim import decay_parameter_names
    from tinyst.training_args import SentenceTransformerTrainingArguments

    objectives = list(train_objectives)
    if not objectives or not all(isinstance(o, (tuple, list)) and len(o) == 2 for o in objectives):
        raise ValueError("train_objectives must be a non-empty list of (DataLoader, loss) pairs")
    if str(scheduler).lower() not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {scheduler!r}; choose one of {sorted(SCHEDULERS)} (any case)")
    datasets, losses, batch_sampler, batch_size = {}, {}, "batch_sampler", 8
    for i, (loader, loss) in enumerate(objectives, start=1):
        if type(loader).__name__ == "NoDuplicatesDataLoader":
            batch_sampler = "no_duplicates"
        elif type(getattr(loader, "dataset", None)).__name__ == "SentenceLabelDataset":
            batch_sampler = "group_by_label"
        batch_size = getattr(loader, "batch_size", batch_size)  # as ST: the last loader's batch size wins
        datasets[f"_dataset_{i}"] = examples_to_dataset(loader, f"train_objectives[{i - 1}]")
        losses[f"_dataset_{i}"] = loss
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"the DataLoaders need a positive int batch_size, got {batch_size!r}")
    max_steps = -1
    if steps_per_epoch is not None and steps_per_epoch > 0:
        if epochs == 1:
            max_steps = steps_per_epoch
        else:
            warnings.warn("steps_per_epoch is ignored when epochs > 1 (as in ST 3.x): training on the full datasets")
    params = dict(optimizer_params if optimizer_params is not None else {"lr": 2e-5})
    lr = params.pop("lr", 1e-3)  # without "lr", torch's AdamW default applies, as in ST
    betas, eps = params.get("betas", (0.9, 0.999)), params.get("eps", 1e-8)
    custom = optimizer_class is not torch.optim.AdamW or bool(set(params) - {"betas", "eps"})
    output_dir = checkpoint_path or tempfile.mkdtemp(prefix="tinyst-fit-")  # the trainer's logs; removed after
    args = SentenceTransformerTrainingArguments(
        output_dir=output_dir, batch_sampler=batch_sampler, multi_dataset_batch_sampler="round_robin",
        per_device_train_batch_size=batch_size, per_device_eval_batch_size=batch_size, num_train_epochs=epochs,
        max_steps=max_steps, learning_rate=lr, adam_beta1=betas[0], adam_beta2=betas[1], adam_epsilon=eps,
        weight_decay=weight_decay, lr_scheduler_type=SCHEDULERS[str(scheduler).lower()], warmup_steps=warmup_steps,
        max_grad_norm=max_grad_norm, fp16=use_amp, disable_tqdm=not show_progress_bar,
        save_strategy="steps" if checkpoint_path else "no", save_steps=checkpoint_save_steps,
        save_total_limit=checkpoint_save_total_limit or None)
    try:
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=datasets, loss=losses,
                                             evaluator=evaluator)
        if custom:  # another optimizer (or AdamW options the arguments lack): the same two decay groups
            decay = decay_parameter_names(trainer.router)
            named = [(n, p) for n, p in trainer.router.named_parameters() if p.requires_grad]
            trainer.optimizer = optimizer_class(
                [{"params": [p for n, p in named if n in decay], "weight_decay": weight_decay},
                 {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0}], lr=lr, **params)
        trainer.callbacks.append(FitCallback(trainer, evaluator, evaluation_steps, output_path, save_best_model,
                                             callback))
        trainer.train()
    finally:
        if not checkpoint_path:
            shutil.rmtree(output_dir, ignore_errors=True)
