"""The shape every tinyst loss shares, and the input checks they all run.

A loss is called like ST's: `loss(sentence_features, labels)`, where `sentence_features[k]` is the
tokenized k-th text column. `EmbeddingLoss.forward` embeds each column with `self.model` and hands
the (B, D) embeddings to `compute_loss_from_embeddings`, which holds the math. Wrappers (Matryoshka)
and cached losses call that method directly on transformed or cached embeddings: no monkeypatching.

Each subclass declares what it needs, which `check_inputs` enforces and the dataset checks read:
    n_inputs = (min, max)  number of text columns (max None = unbounded)
    label    = None | "float" | "int" | "binary" | "vector" | "any"   (None: must not have a label)
Not included: ST's ForwardDecorator / CachedLossDecorator machinery.
"""
import torch
from torch import nn


class EmbeddingLoss(nn.Module):
    n_inputs: tuple = (1, None)
    label: str | None = "any"
    citation: str = ""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, sentence_features, labels=None) -> torch.Tensor:
        self.check_inputs(sentence_features, labels)
        embeddings = [self.model(f)["sentence_embedding"] for f in sentence_features]  # K x (B, D)
        return self.compute_loss_from_embeddings(embeddings, labels)

    def compute_loss_from_embeddings(self, embeddings, labels) -> torch.Tensor:
        raise NotImplementedError

    def get_config_dict(self) -> dict:
        return {}

    def check_inputs(self, sentence_features, labels) -> None:
        name = type(self).__name__
        check_inputs(name, self.n_inputs, self.label, len(sentence_features), labels)
        rows = {f["input_ids"].shape[0] for f in sentence_features if "input_ids" in f}
        if len(rows) > 1:
            raise ValueError(f"{name} expects every text column to hold the same number of rows, got {sorted(rows)}")
        if self.label is not None and labels is not None and rows and labels.shape[0] not in rows:
            raise ValueError(f"{name} got {labels.shape[0]} labels for {rows.pop()} rows")


def describe_inputs(n_inputs) -> str:
    lo, hi = n_inputs
    return f"{lo}" if lo == hi else (f"at least {lo}" if hi is None else f"{lo} to {hi}")


def check_inputs(name: str, n_inputs, label, n_columns: int, labels) -> None:
    """Raise a ValueError naming the loss when the batch cannot be used by it."""
    lo, hi = n_inputs
    if n_columns < lo or (hi is not None and n_columns > hi):
        raise ValueError(f"{name} expects {describe_inputs(n_inputs)} text column(s), got {n_columns}")
    if label is None:
        return  # label-free losses ignore whatever the collator passes (ST does too)
    if labels is None:
        raise ValueError(f"{name} needs a label column ('label' or 'score'), but the batch has none")
    if not isinstance(labels, torch.Tensor):
        raise ValueError(f"{name} expects labels as a tensor, got {type(labels).__name__}")
    if label in ("float", "binary") and labels.dim() != 1:
        raise ValueError(f"{name} expects one number per row as label, got labels of shape {tuple(labels.shape)}")
    if label == "int" and (labels.dtype.is_floating_point or labels.dim() != 1):
        raise ValueError(f"{name} expects integer class labels of shape (B,), got {labels.dtype} {tuple(labels.shape)}")
    if label == "vector" and labels.dim() != 2:
        raise ValueError(f"{name} expects a (B, D) embedding as label, got shape {tuple(labels.shape)}")
    if labels.dtype.is_floating_point and not torch.isfinite(labels).all():
        raise ValueError(f"{name} got NaN or infinite labels")
    if label == "binary" and not torch.isin(labels.float(), torch.tensor([0.0, 1.0], device=labels.device)).all():
        raise ValueError(f"{name} expects binary labels 0/1, got values {labels.unique().tolist()[:10]}")
