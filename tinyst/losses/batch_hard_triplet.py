"""BatchHardTripletLoss: for every anchor, its furthest positive against its closest negative.

The batch holds single sentences with class labels; every sentence serves as an anchor. Rows with
the same label are positives of each other, rows with another label are negatives. This file
also holds what the other Batch* triplet losses share: the (B, B) distance matrices and the
label masks.

    loss = mean_a relu(max_{p: y_p = y_a, p != a} d(a, p) - min_{n: y_n != y_a} d(a, n) + margin)

Inputs
    | texts                 | labels          |
    |-----------------------|-----------------|
    | single sentences      | int class label |

Shapes: embeddings = [x] with x (B, D); labels (B,) int.
Batch-size sensitive: yes. Positives and negatives come from the batch: every label needs at least
    two rows in it, else that anchor has no positive (its positive distance counts as 0).
Recommended sampler: GroupByLabelBatchSampler (GROUP_BY_LABEL).
sentence-transformers v3: losses.BatchHardTripletLoss and BatchHardTripletLossDistanceFunction
    (same defaults, ST's misspelt `eucledian_distance` kept, `euclidean_distance` added).
Reference: Hermans, Beyer & Leibe, "In Defense of the Triplet Loss for Person Re-Identification"
    (2017), https://arxiv.org/abs/1703.07737; https://omoindrot.github.io/triplet-loss
Not included: nothing.
"""
import torch
import torch.nn.functional as F

from tinyst import util
from tinyst.losses.base import EmbeddingLoss


def cosine_distance(embeddings: torch.Tensor) -> torch.Tensor:
    """1 - cos for every pair of rows: (B, D) -> (B, B)."""
    return 1 - util.cos_sim(embeddings, embeddings)


def euclidean_distance(embeddings: torch.Tensor, squared: bool = False) -> torch.Tensor:
    """L2 distance for every pair of rows, via ||a||^2 - 2 a.b + ||b||^2: (B, D) -> (B, B)."""
    gram = embeddings @ embeddings.T  # (B, B)
    sq_norm = gram.diagonal()  # (B,)
    d2 = (sq_norm[None, :] - 2 * gram + sq_norm[:, None]).clamp(min=0)  # (B, B); rounding can dip below 0
    if squared:
        return d2
    # subtle: sqrt has an infinite slope at 0 (the diagonal, duplicate rows), so take it at a tiny
    # positive value there and give those entries a zero value and zero gradient
    zero = d2 == 0
    return d2.masked_fill(zero, 1e-16).sqrt().masked_fill(zero, 0.0)


class BatchHardTripletLossDistanceFunction:
    """Pairwise distance matrices for the Batch* triplet losses: (B, D) -> (B, B)."""

    cosine_distance = staticmethod(cosine_distance)
    euclidean_distance = staticmethod(euclidean_distance)
    eucledian_distance = staticmethod(euclidean_distance)  # ST's spelling, kept so ST code ports


def anchor_positive_mask(labels: torch.Tensor) -> torch.Tensor:
    """(B, B) bool: [a, p] is True when a != p share a label."""
    same = labels[:, None] == labels[None, :]  # (B, B)
    return same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)


def anchor_negative_mask(labels: torch.Tensor) -> torch.Tensor:
    """(B, B) bool: [a, n] is True when the labels differ."""
    return labels[:, None] != labels[None, :]


def triplet_mask(labels: torch.Tensor) -> torch.Tensor:
    """(B, B, B) bool: [a, p, n] is True for a valid triplet (a != p, y_a = y_p, y_a != y_n)."""
    return anchor_positive_mask(labels)[:, :, None] & anchor_negative_mask(labels)[:, None, :]


def hardest_distances(d: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per anchor: the furthest positive and the closest negative distance, each (B,)."""
    hardest_pos = (d * anchor_positive_mask(labels)).max(dim=1).values  # (B,); 0 without a positive
    # lift the non-negatives by the row's largest distance so the min skips them (ST's trick, kept for parity)
    lifted = d + d.max(dim=1, keepdim=True).values * ~anchor_negative_mask(labels)  # (B, B)
    hardest_neg = lifted.min(dim=1).values  # (B,)
    return hardest_pos, hardest_neg


class BatchTripletLoss(EmbeddingLoss):
    """Shared shape of the Batch* triplet losses: one text column and integer class labels."""

    n_inputs = (1, 1)
    label = "int"
    citation = """@misc{hermans2017defense,
    title={In Defense of the Triplet Loss for Person Re-Identification},
    author={Alexander Hermans and Lucas Beyer and Bastian Leibe},
    year={2017}, eprint={1703.07737}, archivePrefix={arXiv},
}"""

    def __init__(self, model, distance_metric=euclidean_distance, margin: float = 5):
        super().__init__(model)
        self.distance_metric = distance_metric
        self.triplet_margin = margin

    @property
    def sentence_embedder(self):  # ST's name for the model in these losses
        return self.model

    get_triplet_mask = staticmethod(triplet_mask)
    get_anchor_positive_triplet_mask = staticmethod(anchor_positive_mask)
    get_anchor_negative_triplet_mask = staticmethod(anchor_negative_mask)


class BatchHardTripletLoss(BatchTripletLoss):
    def compute_loss_from_embeddings(self, embeddings, labels) -> torch.Tensor:
        d = self.distance_metric(embeddings[0].float())  # (B, B)
        hardest_pos, hardest_neg = hardest_distances(d, labels)  # (B,) each
        return F.relu(hardest_pos - hardest_neg + self.triplet_margin).mean()
