"""`SentenceTransformerTrainer`: the whole training loop in one file you can read top to bottom.

Mirrors what ST 3.4's trainer does on top of transformers.Trainer + accelerate: batches from the
batch samplers, a loss (or a dict of losses keyed by dataset name), AdamW + a warmup schedule,
fp16 (GradScaler) / bf16 autocast, gradient accumulation, clipping, logging, evaluation, checkpoints
with exact mid-epoch resume, best-model tracking and DDP under torchrun.
Subtle: gradient accumulation averages the gradients of independent small batches; it does NOT add
in-batch negatives (use a Cached* loss for that).
Not included: DataParallel, DeepSpeed/FSDP, hub pushing, hyper-parameter search, IterableDataset.
"""
import math
import os
import time
import warnings
from collections import namedtuple
from contextlib import nullcontext
from itertools import islice
from pathlib import Path

import torch
from torch import nn

from tinyst import distributed
from tinyst.datasets import Dataset, DatasetDict
from tinyst.datasets.columns import check_dataset_for_loss
from tinyst.models.ops import return_freed_memory_to_os, sparse_embedding_grads
from tinyst.trainer import checkpoint as ckpt
from tinyst.trainer.collator import Collator
from tinyst.trainer.device import pick_device_and_precision, set_seed
from tinyst.trainer.logs import Logger, TrainerState
from tinyst.trainer.optim import build_optimizer, build_scheduler
from tinyst.trainer.batches import BatchLoader

TrainOutput = namedtuple("TrainOutput", ["global_step", "training_loss", "metrics"])


class LossRouter(nn.Module):
    """All losses under one module, so DDP wraps (and no_sync covers) every parameter once."""

    def __init__(self, losses: dict):
        super().__init__()
        self.losses = nn.ModuleDict(losses)

    def forward(self, name, features, labels):
        return self.losses[name](features, labels)


class SentenceTransformerTrainer:
    def __init__(self, model=None, args=None, train_dataset=None, eval_dataset=None, loss=None, evaluator=None,
                 callbacks=None, optimizers=(None, None)):
        from tinyst.losses import CoSENTLoss
        from tinyst.training_args import SentenceTransformerTrainingArguments

        if model is None:
            raise ValueError("SentenceTransformerTrainer needs a model")
        self.args = args = args if args is not None else SentenceTransformerTrainingArguments()
        distributed.setup(args.ddp_timeout)
        set_seed(args.seed)
        self.device, self.amp_dtype = pick_device_and_precision(args)
        self.model = model.to(self.device)
        model[0].auto_model.gradient_checkpointing = args.gradient_checkpointing
        self.train_dataset, self.eval_dataset = self._as_datasets(train_dataset), self._as_datasets(eval_dataset)
        if args.eval_strategy != "no" and self.eval_dataset is None and evaluator is None:
            raise ValueError(f"eval_strategy={args.eval_strategy!r} needs an eval_dataset or an evaluator")
        losses = loss if isinstance(loss, dict) else {"_default": loss if loss is not None else CoSENTLoss}
        losses = {k: (v(model) if not isinstance(v, nn.Module) else v) for k, v in losses.items()}
        self.loss = losses if isinstance(loss, dict) else losses["_default"]
        self.router = LossRouter(losses).to(self.device)
        self._check_datasets_against_losses()
        if isinstance(evaluator, (list, tuple)):
            from tinyst.evaluation import SequentialEvaluator

            evaluator = SequentialEvaluator(evaluator)
        self.evaluator = evaluator
        self.collator = Collator(model, args.prompts)
        self.callbacks = callbacks or []
        self.optimizer, self.scheduler = optimizers
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.wrapped = self.router
        if distributed.is_distributed():
            ids = [self.device.index] if self.device.type == "cuda" else None
            # subtle: the pooler (and a GIST guide) get no gradient, so DDP must look for unused parameters
            self.wrapped = nn.parallel.DistributedDataParallel(self.router, device_ids=ids, find_unused_parameters=True)
        self.state = TrainerState()
        from tinyst.model_card import ModelCardCallback

        self.callbacks = [*self.callbacks, ModelCardCallback(self)]  # fills model.model_card_data (README.md)

    # -- data ---------------------------------------------------------------------------------
    @staticmethod
    def _as_datasets(ds):
        if ds is None or isinstance(ds, (Dataset, DatasetDict)):
            return ds
        if isinstance(ds, dict):
            return DatasetDict(ds)
        raise ValueError(f"datasets must be tinyst.Dataset, DatasetDict or dict, got {type(ds).__name__}")

    def _named(self, ds) -> list:
        return list(ds.items()) if isinstance(ds, DatasetDict) else [("_default", ds)]

    def _loss_name(self, dataset_name: str) -> str:
        if dataset_name in self.router.losses:
            return dataset_name
        if "_default" in self.router.losses:
            return "_default"
        raise ValueError(f"no loss for dataset {dataset_name!r}; the loss dict has keys {sorted(self.router.losses)}")

    def _check_datasets_against_losses(self) -> None:
        for which, ds in (("train_dataset", self.train_dataset), ("eval_dataset", self.eval_dataset)):
            for name, part in self._named(ds) if ds is not None else []:
                loss = self.router.losses[self._loss_name(name)]
                try:  # errors name the argument, and the dataset for dicts (not the internal "_default")
                    check_dataset_for_loss(part, loss, name=None if name == "_default" else name)
                except ValueError as e:
                    raise ValueError(f"{which}: {e}") from None

    def loader(self, ds, batch_size: int, seed: int) -> BatchLoader:
        return BatchLoader(self._named(ds), self.collator, self.args, batch_size, seed)

    # -- the training step: the heart of it all -------------------------------------------------
    def training_step(self, micro_batches: list) -> tuple:
        """One optimizer step over the micro-batches of gradient accumulation; returns (loss, grad_norm)."""
        n = len(micro_batches)
        total = torch.zeros((), device=self.device)
        # sparse embedding gradients on CPU, dense again after the loop (models/ops.py); not under DDP's all-reduce
        with sparse_embedding_grads(self.router, enabled=self.wrapped is self.router and self.device.type == "cpu"):
            for i, (name, features, labels) in enumerate(micro_batches):
                features = [{k: v.to(self.device) if torch.is_tensor(v) else v for k, v in f.items()} for f in features]
                labels = labels.to(self.device) if labels is not None else None
                last = i == n - 1
                # subtle: under DDP only the last micro-batch all-reduces gradients; the others accumulate locally
                sync = self.wrapped.no_sync() if (not last and self.wrapped is not self.router) else nullcontext()
                with sync:
                    with self.autocast():
                        loss = self.wrapped(self._loss_name(name), features, labels)
                    self.scaler.scale(loss / n).backward()  # subtle: / n so the step sees the mean gradient
                total += loss.detach().float()
        loss = total / n
        self.scaler.unscale_(self.optimizer)
        max_norm = self.args.max_grad_norm if self.args.max_grad_norm > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.router.parameters(), max_norm)
        bad = None  # subtle: a finite loss can still back-propagate NaN (e.g. sqrt at 0); the fp16 scaler handles both
        if not self.scaler.is_enabled() and not bool(torch.isfinite(loss) & torch.isfinite(grad_norm)):
            bad = f"loss is {loss.item()}" if not torch.isfinite(loss) else f"gradient norm is {grad_norm.item()}"
        if distributed.world_size() > 1 and not self.scaler.is_enabled():
            # subtle: the loss is per rank; unless all ranks skip (or raise) together, weights diverge or a rank hangs
            if distributed.reduce_mean(torch.tensor(float(bad is not None), device=self.device)).item() > 0 and not bad:
                bad = "the loss or gradient norm of another rank is not finite"
        if bad:
            if self.args.nan_loss == "raise":
                name = micro_batches[-1][0]
                where = f"epoch {self.state['epoch_index']}, batch {self.state['batches_in_epoch']}" + (
                    f" of dataset {name!r}" if name != "_default" else "")
                raise FloatingPointError(f"{bad} at step {self.state['global_step'] + 1} ({where}); "
                                         f"set nan_loss='skip' to skip such steps")
            warnings.warn(f"skipping optimizer step {self.state['global_step'] + 1}: {bad}")
            self.optimizer.zero_grad(set_to_none=True)
        else:
            self.scaler.step(self.optimizer)  # with fp16 the scaler skips steps whose gradients overflowed
            self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss, grad_norm

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype else nullcontext()

    # -- the loop -------------------------------------------------------------------------------
    def train(self, resume_from_checkpoint=None) -> TrainOutput:
        args = self.args
        if self.train_dataset is None:
            raise ValueError("train() needs a train_dataset")
        loader = self.loader(self.train_dataset, args.per_device_train_batch_size, args.seed)
        steps_per_epoch = max(math.ceil(len(loader) / args.gradient_accumulation_steps), 1)
        total = args.max_steps if args.max_steps > 0 else math.ceil(args.num_train_epochs * steps_per_epoch)
        n_epochs = math.ceil(total / steps_per_epoch)
        if self.optimizer is None:
            self.optimizer = build_optimizer(self.router, args)
        if self.scheduler is None:
            self.scheduler = build_scheduler(self.optimizer, args, total)
        self.logging_steps = args.steps_from(args.logging_steps, total)
        self.eval_steps = args.steps_from(args.eval_steps, total)
        self.save_steps = args.steps_from(args.save_steps, total)
        self.state = TrainerState(global_step=0, epoch=0.0, epoch_index=0, batches_in_epoch=0, max_steps=total,
                                  log_history=[], best_metric=None, best_model_checkpoint=None)
        if resume_from_checkpoint:
            self._resume(resume_from_checkpoint)
        self.log = Logger(args, self.callbacks)
        self.log.history = self.state["log_history"]
        self.log.callback("on_train_begin", self.state)
        if args.eval_on_start and self.state["global_step"] == 0:
            self.evaluate()
        if self.device.type == "cpu" and os.environ.get("TINYST_LOW_MEMORY") == "1":
            return_freed_memory_to_os()  # trade speed for peak RSS (models/ops.py)
        self.router.train()
        t0, step_losses, window = time.time(), [], []
        for epoch in range(self.state["epoch_index"], n_epochs):
            loader.set_epoch(epoch)
            loader.skip_batches(self.state["batches_in_epoch"])
            batches = iter(loader)
            while self.state["global_step"] < total:
                micro = list(islice(batches, args.gradient_accumulation_steps))
                if not micro:
                    break
                loss, grad_norm = self.training_step(micro)
                self.state["global_step"] += 1
                self.state["batches_in_epoch"] += len(micro)
                step_losses.append(loss)
                window.append(loss)
                self.state["epoch"] = epoch_float = epoch + self.state["batches_in_epoch"] / max(len(loader), 1)
                step = self.state["global_step"]
                if (args.logging_strategy == "steps" and step % self.logging_steps == 0) or (
                        args.logging_first_step and step == 1):
                    self._log_train(window, grad_norm, epoch_float)
                    window = []
                self._maybe_evaluate_and_save(step, epoch_float, args.eval_strategy == "steps" and
                                              step % self.eval_steps == 0, args.save_strategy == "steps" and
                                              step % self.save_steps == 0)
                self.log.callback("on_step_end", self.state)
                self.log.progress(step, total)
                if self.log.control.should_training_stop:
                    break  # a callback asked (e.g. early stopping)
            if self.log.control.should_training_stop or (
                    self.state["global_step"] >= total and self.state["batches_in_epoch"] < len(loader)):
                break  # max_steps reached mid-epoch, or a callback stopped training
            self.state["epoch_index"], self.state["batches_in_epoch"] = epoch + 1, 0
            if args.logging_strategy == "epoch" and window:
                self._log_train(window, grad_norm, epoch + 1.0)
                window = []
            self._maybe_evaluate_and_save(self.state["global_step"], epoch + 1.0, args.eval_strategy == "epoch",
                                          args.save_strategy == "epoch")
        if args.load_best_model_at_end and self.state["best_model_checkpoint"]:
            self._load_model_weights(self.state["best_model_checkpoint"])
        runtime = time.time() - t0
        # every rank took the same number of steps, so the mean over ranks is the mean over all batches
        train_loss = distributed.reduce_mean(torch.stack(step_losses).mean()).item() if step_losses else float("nan")
        samples = len(step_losses) * args.per_device_train_batch_size * args.gradient_accumulation_steps
        metrics = {"train_runtime": round(runtime, 4), "train_steps_per_second": round(len(step_losses) / runtime, 3),
                   "train_samples_per_second": round(samples * distributed.world_size() / runtime, 3),
                   "train_loss": train_loss, "epoch": self.state["global_step"] / steps_per_epoch}
        self.log.log(metrics, self.state["global_step"], self.state)
        self.log.callback("on_train_end", self.state)
        self.log.close()
        self.model.train(False)
        return TrainOutput(self.state["global_step"], train_loss, metrics)

    def _log_train(self, window, grad_norm, epoch_float) -> None:
        mean = distributed.reduce_mean(torch.stack(window).mean()).item()
        logs = {"loss": round(mean, 4), "grad_norm": float(grad_norm),
                "learning_rate": self.scheduler.get_last_lr()[0], "epoch": round(epoch_float, 4)}
        self.log.log(logs, self.state["global_step"], self.state)

    def _maybe_evaluate_and_save(self, step: int, epoch_float: float, do_eval: bool, do_save: bool) -> None:
        metrics = self.evaluate(epoch=epoch_float) if do_eval else None
        if metrics is not None and self.args.metric_for_best_model:
            key = self.args.metric_for_best_model
            key = key if key.startswith("eval_") else f"eval_{key}"
            if key not in metrics:
                raise ValueError(f"metric_for_best_model {key!r} is not among the evaluation metrics {sorted(metrics)}")
            best, value = self.state["best_metric"], metrics[key]
            if best is None or (value > best if self.args.greater_is_better else value < best):
                self.state["best_metric"] = value
                self.state["best_model_checkpoint"] = str(Path(self.args.output_dir) / f"checkpoint-{step}")
                do_save = do_save or self.args.save_strategy == "best"
        if do_save:
            self.save_checkpoint(step)

    # -- evaluation -------------------------------------------------------------------------------
    def evaluate(self, eval_dataset=None, epoch: float = -1) -> dict:
        eval_dataset = self._as_datasets(eval_dataset) if eval_dataset is not None else self.eval_dataset
        was_training, t0 = self.router.training, time.time()
        self.router.eval()
        metrics = {}
        if eval_dataset is not None:
            for name, part in self._named(eval_dataset):
                loader = self.loader(part, self.args.per_device_eval_batch_size, self.args.seed)
                if len(loader) == 0:  # under DDP (drop_last) a small eval set can leave a rank without a batch
                    what = "eval_dataset" if name == "_default" else f"eval dataset {name!r}"
                    raise ValueError(f"{what} has {len(part)} rows: not one batch of {loader.sampler.batch_size} per "
                                     f"rank on {distributed.world_size()} ranks; lower per_device_eval_batch_size")
                losses = []
                with torch.no_grad(), self.autocast():
                    for _, features, labels in loader:
                        features = [{k: v.to(self.device) if torch.is_tensor(v) else v for k, v in f.items()}
                                    for f in features]
                        labels = labels.to(self.device) if labels is not None else None
                        losses.append(self.router(self._loss_name(name), features, labels).float())
                key = "eval_loss" if name == "_default" else f"eval_{name}_loss"
                metrics[key] = distributed.reduce_mean(torch.stack(losses).mean()).item()
        if self.evaluator is not None:
            results = None
            if distributed.is_main():
                out_dir = Path(self.args.output_dir) / "eval"
                out_dir.mkdir(parents=True, exist_ok=True)
                results = self.evaluator(self.model, output_path=str(out_dir), epoch=epoch,
                                         steps=self.state.get("global_step", 0))
            results = distributed.broadcast_object(results)
            metrics.update({f"eval_{k}": v for k, v in results.items()})
        metrics["eval_runtime"] = round(time.time() - t0, 4)
        metrics["epoch"] = epoch
        self.router.train(was_training)
        if hasattr(self, "log"):
            self.log.log(metrics, self.state.get("global_step", 0), self.state)
            self.log.callback("on_evaluate", self.state, metrics=metrics)
        return metrics

    # -- checkpoints --------------------------------------------------------------------------------
    def save_model(self, output_dir=None) -> None:
        """Save the model (ST folder layout) to output_dir, default args.output_dir; rank 0 writes."""
        if distributed.is_main():
            self.model.save(str(output_dir or self.args.output_dir))
        distributed.barrier()

    def save_checkpoint(self, step: int) -> Path:
        folder = Path(self.args.output_dir) / f"checkpoint-{step}"
        folder.parent.mkdir(parents=True, exist_ok=True)
        ckpt.save_checkpoint(folder, self.model, self.optimizer, self.scheduler, self.scaler, self.state,
                             self.args.to_dict(), extra_params=self._loss_only_state())
        ckpt.rotate_checkpoints(self.args.output_dir, self.args.save_total_limit, self.state["best_model_checkpoint"])
        self.log.callback("on_save", self.state, checkpoint=str(folder))
        return folder

    def _loss_only_state(self) -> dict:
        """Parameters the loss owns beyond the model (SoftmaxLoss's classifier, ...): saved for resume."""
        model_ids = {id(p) for p in self.model.parameters()}
        return {n: p.detach().cpu() for n, p in self.router.named_parameters() if id(p) not in model_ids}

    def _load_model_weights(self, folder) -> None:
        from tinyst.sentence_transformer import SentenceTransformer

        loaded = SentenceTransformer(str(folder), device="cpu")
        self.model.load_state_dict(loaded.state_dict())

    def _resume(self, resume_from_checkpoint) -> None:
        if resume_from_checkpoint is True:
            found = ckpt.list_checkpoints(self.args.output_dir)
            if not found:
                raise FileNotFoundError(f"resume_from_checkpoint=True but {self.args.output_dir} has no checkpoint")
            resume_from_checkpoint = found[-1]
        folder = Path(resume_from_checkpoint)
        state = ckpt.read_state(folder)
        self._load_model_weights(folder)
        extra = ckpt.load_training_state(folder, self.optimizer, self.scheduler, self.scaler)
        if extra:
            self.router.load_state_dict(extra, strict=False)
        self.state.update(state)
