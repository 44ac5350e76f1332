"""MatryoshkaLoss: train every leading slice of the embedding (e.g. 768, 256, 64 dims) to work alone.

The inner loss runs once per size on truncated, re-normalised copies of the same embeddings
(one encoder pass, no re-encoding, no patching of model.forward), and the results are summed:

    loss = sum_d  w_d * inner( [normalize(e[:, :d]) for e in embeddings], labels )

Inputs: those of the inner loss (any tinyst loss that works from embeddings, Cached ones included).
Batch-size sensitive: as the inner loss.
Recommended sampler: as the inner loss.
Around a Cached loss the inner loss's GradCache machinery is driven with this sum as its loss,
    so the encoder still runs once per mini-batch (plus the replay), not once per size.
n_dims_per_step > 0 trains a random subset of the sizes each step (Python's `random`, as ST).
subtle: the slices are re-normalised even at the full size (as ST 3.4), so a dot-product inner
    loss sees unit vectors; extra inputs a loss computes from the texts (GIST's guide embeddings)
    are passed through unshrunk.
sentence-transformers v3: losses.MatryoshkaLoss (ST 3.4 wraps Cached losses with a decorator on
    `calculate_loss`, other losses by patching model.forward; same values).
Reference: Kusupati et al. 2022, "Matryoshka Representation Learning", https://arxiv.org/abs/2205.13147
Not included: wrapping losses that embed with a second encoder (ContrastiveTensionLossInBatchNegatives)
    or call backward themselves (mini-batched MegaBatchMarginLoss); both are refused.
"""
import random

import torch
import torch.nn.functional as F

from tinyst.losses.base import EmbeddingLoss
from tinyst.losses.cached import CachedLossMixin
from tinyst.losses.contrastive_tension import ContrastiveTensionLossInBatchNegatives
from tinyst.losses.mega_batch_margin import MegaBatchMarginLoss


def shrink(e: torch.Tensor, dim: int) -> torch.Tensor:
    """(B, D) -> (B, dim): the first `dim` coordinates, L2-normalised again."""
    if dim > e.shape[-1]:
        raise ValueError(f"MatryoshkaLoss: dimension {dim} in matryoshka_dims is larger than "
                         f"the embeddings' {e.shape[-1]}")
    return F.normalize(e[..., :dim], p=2, dim=-1)


class MatryoshkaLoss(EmbeddingLoss):
    citation = """@misc{kusupati2024matryoshka,
    title={Matryoshka Representation Learning},
    author={Aditya Kusupati and Gantavya Bhatt and Aniket Rege and Matthew Wallingford and Aditya Sinha and Vivek Ramanujan and William Howard-Snyder and Kaifeng Chen and Sham Kakade and Prateek Jain and Ali Farhadi},
    year={2024}, eprint={2205.13147}, archivePrefix={arXiv}, primaryClass={cs.LG}
}"""

    def __init__(self, model, loss, matryoshka_dims, matryoshka_weights=None, n_dims_per_step: int = -1):
        super().__init__(model)
        if not isinstance(loss, EmbeddingLoss):
            raise TypeError(f"MatryoshkaLoss expects a tinyst loss to wrap, got {type(loss).__name__}")
        if isinstance(loss, ContrastiveTensionLossInBatchNegatives) or (
            isinstance(loss, MegaBatchMarginLoss) and loss.use_mini_batched_version
        ):
            raise ValueError(f"MatryoshkaLoss cannot wrap {type(loss).__name__}: it embeds with a second encoder "
                             "or calls backward itself (use MegaBatchMarginLoss(use_mini_batched_version=False))")
        dims = list(matryoshka_dims)
        if not dims or any(not isinstance(d, int) or isinstance(d, bool) or d < 1 for d in dims):
            raise ValueError(f"MatryoshkaLoss expects matryoshka_dims as a non-empty list of positive ints, "
                             f"got {matryoshka_dims!r}")
        weights = [1] * len(dims) if matryoshka_weights is None else list(matryoshka_weights)
        if len(weights) != len(dims):
            raise ValueError(f"MatryoshkaLoss got {len(weights)} matryoshka_weights for {len(dims)} matryoshka_dims")
        if not isinstance(n_dims_per_step, int):
            raise ValueError(f"MatryoshkaLoss expects n_dims_per_step as an int (-1 = all), got {n_dims_per_step!r}")
        self.loss = loss
        # largest first, as ST (and tuples, as ST stores them: the model card shows them so)
        pairs = sorted(zip(dims, weights), key=lambda x: x[0], reverse=True)
        self.matryoshka_dims, self.matryoshka_weights = zip(*pairs)
        self.n_dims_per_step = n_dims_per_step
        self.n_inputs, self.label = loss.n_inputs, loss.label

    def check_inputs(self, sentence_features, labels) -> None:
        self.loss.check_inputs(sentence_features, labels)  # the error then names the loss that needs it

    def forward(self, sentence_features, labels=None) -> torch.Tensor:
        self.check_inputs(sentence_features, labels)
        if isinstance(self.loss, CachedLossMixin):
            return self.loss.forward_with(sentence_features, labels, self.compute_loss_from_embeddings)
        embeddings = [self.model(f)["sentence_embedding"] for f in sentence_features]  # K x (B, D)
        return self.compute_loss_from_embeddings(embeddings, labels, **self.loss_context(sentence_features))

    def loss_context(self, sentence_features) -> dict:
        return self.loss.loss_context(sentence_features) if hasattr(self.loss, "loss_context") else {}

    def compute_loss_from_embeddings(self, embeddings, labels=None, **context) -> torch.Tensor:
        picked = range(len(self.matryoshka_dims))
        if 0 < self.n_dims_per_step < len(picked):
            picked = random.sample(picked, self.n_dims_per_step)
        total = 0.0
        for i in picked:
            dim, weight = self.matryoshka_dims[i], self.matryoshka_weights[i]
            shrunk = [shrink(e, dim) for e in embeddings]  # K x (B, dim)
            total = total + weight * self.loss.compute_loss_from_embeddings(shrunk, labels, **context)
        return total

    def get_config_dict(self) -> dict:
        return {"loss": type(self.loss).__name__, "matryoshka_dims": self.matryoshka_dims,
                "matryoshka_weights": self.matryoshka_weights, "n_dims_per_step": self.n_dims_per_step}
