"""AdamW with HF's decay groups, and learning-rate schedules as pure functions of the step.

Mirrors transformers' `get_scheduler` (linear, cosine, constant, constant_with_warmup,
cosine_with_restarts, polynomial with power 1) and `Trainer.create_optimizer`'s parameter groups:
weight decay on every parameter except biases and LayerNorm weights.
`AdamW` is a small holder around torch's functional `adamw` (the fused kernel): the same update and
state_dict format as `torch.optim.AdamW`, without `torch.optim.Optimizer`, whose first call imports
torch._dynamo (about 1 s and 70 MB of resident memory on CPU). `torch.optim` optimizers and schedulers
still work when passed as `optimizers=(...)`.
Not included: other optimizers (Adafactor, 8-bit), layer-wise learning rates, AMSGrad.
"""
import math

import torch
from torch import nn
from torch.optim.adamw import adamw

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
    return AdamW(groups, lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2), eps=args.adam_epsilon)


class AdamW:
    """torch.optim.AdamW's update (decoupled weight decay, bias correction) on torch's fused kernel."""

    def __init__(self, groups: list, lr: float, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.01):
        for i, b in enumerate(betas):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {b}")
        if lr < 0 or eps < 0:
            raise ValueError(f"Invalid learning rate {lr} or epsilon {eps}: both must be >= 0")
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay}
        self.param_groups = [{**defaults, **g, "params": list(g["params"])} for g in groups]
        for g in self.param_groups:
            g.setdefault("initial_lr", g["lr"])
        self.state = {}  # param -> {"step", "exp_avg", "exp_avg_sq"}, created at its first step

    @torch.no_grad()
    def step(self) -> None:
        for g in self.param_groups:
            params = [p for p in g["params"] if p.grad is not None]
            for p in params:
                if p not in self.state:
                    self.state[p] = {"step": torch.zeros((), dtype=torch.float32, device=p.device),
                                     "exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
            states = [self.state[p] for p in params]
            devices = {p.device for p in params}
            fused = len(devices) == 1 and next(iter(devices), None).type in ("cpu", "cuda")  # else foreach/plain
            if params:
                beta1, beta2 = g["betas"]
                adamw(params, [p.grad for p in params], [s["exp_avg"] for s in states],
                      [s["exp_avg_sq"] for s in states], [], [s["step"] for s in states], fused=fused,
                      amsgrad=False, beta1=beta1, beta2=beta2, lr=g["lr"], weight_decay=g["weight_decay"],
                      eps=g["eps"], maximize=False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    def state_dict(self) -> dict:
        """torch.optim's format: states keyed by the parameter's index across groups."""
        index = {p: i for i, p in enumerate(p for g in self.param_groups for p in g["params"])}
        groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [index[p] for p in g["params"]]}
                  for g in self.param_groups]
        return {"state": {index[p]: dict(s) for p, s in self.state.items()}, "param_groups": groups}

    def load_state_dict(self, sd: dict) -> None:
        sizes = [len(g["params"]) for g in self.param_groups]
        if [len(g["params"]) for g in sd["param_groups"]] != sizes:
            raise ValueError(f"optimizer state has parameter groups of sizes {[len(g['params']) for g in sd['param_groups']]},"
                             f" this optimizer {sizes}")
        params = [p for g in self.param_groups for p in g["params"]]
        for i, s in sd["state"].items():
            p = params[int(i)]
            if s["exp_avg"].shape != p.shape:
                raise ValueError(f"optimizer state {i} has shape {tuple(s['exp_avg'].shape)}, the parameter {tuple(p.shape)}")
            self.state[p] = {k: v.to(p.device) for k, v in s.items()}
        for g, saved in zip(self.param_groups, sd["param_groups"]):
            g.update({k: (tuple(v) if k == "betas" else v) for k, v in saved.items() if k != "params"})


class Schedule:
    """Sets every group's lr to initial_lr x lr_factor(step); state_dict/get_last_lr as torch's LambdaLR."""

    def __init__(self, optimizer, factor):
        self.optimizer, self.last_epoch = optimizer, 0
        self.lr_lambdas = [factor] * len(optimizer.param_groups)
        self._apply()

    def _apply(self) -> None:
        for g, factor in zip(self.optimizer.param_groups, self.lr_lambdas):
            g["lr"] = g["initial_lr"] * factor(self.last_epoch)

    def step(self) -> None:
        self.last_epoch += 1
        self._apply()

    def get_last_lr(self) -> list:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"last_epoch": self.last_epoch}

    def load_state_dict(self, sd: dict) -> None:
        self.last_epoch = int(sd["last_epoch"])
        self._apply()


def build_scheduler(optimizer, args, total_steps: int):
    warmup = args.warmup_steps if args.warmup_steps > 0 else math.ceil(total_steps * args.warmup_ratio)
    factor = lambda step: lr_factor(step, total_steps, warmup, args.lr_scheduler_type)  # noqa: E731
    if isinstance(optimizer, AdamW):
        return Schedule(optimizer, factor)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)  # a torch optimizer passed in by the user
