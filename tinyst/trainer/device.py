"""Seeding, and the one place that decides the trainer's device and autocast precision.

Mirrors what HF's TrainingArguments/accelerate decide from `use_cpu`, `fp16`, `bf16` and LOCAL_RANK.
Not included: MPS/XPU/TPU devices, fp8, DeepSpeed's precision settings.
"""
import random

import numpy as np
import torch

from tinyst import distributed


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def pick_device_and_precision(args):
    """The one place that decides device and precision: (device, autocast dtype or None)."""
    if args.use_cpu or not torch.cuda.is_available():
        device = torch.device("cpu")
    else:
        device = torch.device("cuda", distributed.local_rank())
    if args.fp16:
        if device.type != "cuda":
            raise ValueError("fp16=True needs a CUDA device (fp16 on CPU is not supported); use bf16=True on CPU")
        return device, torch.float16
    if args.bf16:
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError("bf16=True but this GPU does not support bfloat16; use fp16=True")
        return device, torch.bfloat16
    return device, None
