"""AdamW with HF's decay groups, and learning-rate schedules as pure functions of the step.

Mirrors transformers' `get_scheduler` (linear, cosine, constant, constant_with_warmup,
cosine_with_restarts, polynomial with power 1) and `Trainer.create_optimizer`'s parameter groups:
weight decay on every parameter except biases and LayerNorm weights.
Not included: other optimizers (Adafactor, 8-bit), layer-wise learning rates.
"""
import math

import torch
from torch import nn

from tinyst.training_args import SCHEDULES


def lr_factor(step: int, total: int, warmup: int, kind: str = "linear", num_cycles: float = 0.5) -> float:
    """Multiplier of the peak learning rate after `step` optimizer steps."""
    if kind == "constant":
        return 1.0
    if step < warmup:
        return step / max(1, warmup)
    if kind == "constant_with_warmup":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    if kind in ("linear", "polynomial"):  # polynomial with HF's default power 1.0 and end lr 1e-7 ~ linear
        return max(0.0, 1.0 - progress)
    if kind == "cosine":
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * num_cycles * 2.0 * progress)))
    if kind == "cosine_with_restarts":
        if progress >= 1.0:
            return 0.0
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((num_cycles * 2 * progress) % 1.0))))
    raise ValueError(f"unknown lr_scheduler_type {kind!r}; expected one of {SCHEDULES}")


def decay_parameter_names(module: nn.Module) -> set:
    """Names of parameters that get weight decay: not in a LayerNorm, not a bias."""
    no_decay = set()
    for mod_name, mod in module.named_modules():
        for p_name, _ in mod.named_parameters(recurse=False):
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            if isinstance(mod, nn.LayerNorm) or p_name == "bias":
                no_decay.add(full)
    return {n for n, _ in module.named_parameters()} - no_decay


def build_optimizer(module: nn.Module, args) -> torch.optim.Optimizer:
    decay = decay_parameter_names(module)
    params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in params if n in decay], "weight_decay": args.weight_decay},
        {"params": [p for n, p in params if n not in decay], "weight_decay": 0.0},
    ]
    # one fused kernel per step instead of a dozen elementwise passes over every parameter (CPU and CUDA)
    devices = {p.device.type for _, p in params}
    fused = {"fused": True} if len(devices) == 1 and devices <= {"cpu", "cuda"} else {}
    return torch.optim.AdamW(groups, lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2),
                             eps=args.adam_epsilon, **fused)


def build_scheduler(optimizer, args, total_steps: int):
    warmup = args.warmup_steps if args.warmup_steps > 0 else math.ceil(total_steps * args.warmup_ratio)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, warmup, args.lr_scheduler_type))
