"""MultipleNegativesRankingLoss: InfoNCE with in-batch negatives.

Each anchor has to pick out its own positive among all candidates of the batch: its positive,
every other row's positive, and every row's hard negatives. That is a C-way classification per
anchor, cross-entropy over scaled similarities with the answer on the diagonal:

    loss = mean_i  -log( exp(s * sim(a_i, p_i)) / sum_j exp(s * sim(a_i, c_j)) ),  c = [p; n_1; ...; n_k]

Inputs
    | texts                                           | labels |
    |-------------------------------------------------|--------|
    | (anchor, positive)                              | none   |
    | (anchor, positive, negative)                    | none   |
    | (anchor, positive, negative_1, ..., negative_k) | none   |

Shapes: embeddings[k] is (B, D) for text column k; scores (B, C) with C = B * (1 + k).
Batch-size sensitive: yes. More rows, more negatives. Gradient accumulation does NOT add negatives;
    CachedMultipleNegativesRankingLoss does (same value and gradient, memory of one mini-batch).
gather_across_devices: under DDP, candidates from all ranks (with gradient), anchors stay local,
    targets shift by rank * B; with DDP's averaging this is the exact union-batch gradient.
Recommended sampler: NO_DUPLICATES (a repeated text would be a false negative).
sentence-transformers v3: losses.MultipleNegativesRankingLoss (gather_across_devices is ST >= 5.1).
Reference: Henderson et al. 2017, https://arxiv.org/abs/1705.00652, section 4.4.
Not included: nothing.
"""
import torch
import torch.nn.functional as F

from tinyst import util
from tinyst.distributed import all_gather_with_grad, rank
from tinyst.losses.base import EmbeddingLoss

HENDERSON_2017 = """@misc{henderson2017efficient,
    title={Efficient Natural Language Response Suggestion for Smart Reply},
    author={Matthew Henderson and Rami Al-Rfou and Brian Strope and Yun-hsuan Sung and Laszlo Lukacs and Ruiqi Guo and Sanjiv Kumar and Balint Miklos and Ray Kurzweil},
    year={2017}, eprint={1705.00652}, archivePrefix={arXiv}, primaryClass={cs.CL}
}"""


def check_rows(name: str, embeddings) -> int:
    """Every text column must hold the same B >= 1 rows; returns B."""
    rows = [e.shape[0] for e in embeddings]
    if len(set(rows)) != 1 or rows[0] == 0:
        raise ValueError(f"{name} expects every text column to hold the same, non-zero number of rows, got {rows}")
    return rows[0]


def upcast(e: torch.Tensor) -> torch.Tensor:
    """Loss math in at least fp32: half-precision (autocast) embeddings are upcast, fp64 is kept."""
    return e if e.dtype == torch.float64 else e.float()


def gather_columns(columns, gather: bool):
    """-> (columns, offset): with `gather`, every column holds all ranks' rows (rank order) and
    `offset` is where this rank's rows start, i.e. where its anchors' targets move to."""
    if not gather:
        return columns, 0
    return [all_gather_with_grad(c) for c in columns], rank() * columns[0].shape[0]


def similarity_name(fn) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


class MultipleNegativesRankingLoss(EmbeddingLoss):
    n_inputs = (2, None)
    label = None
    citation = HENDERSON_2017

    def __init__(self, model, scale: float = 20.0, similarity_fct=util.cos_sim, gather_across_devices: bool = False):
        super().__init__(model)
        if not callable(similarity_fct):
            raise TypeError(f"{type(self).__name__} expects a callable similarity_fct, got {similarity_fct!r}")
        self.scale = scale  # inverse temperature: scale 20 == temperature 0.05
        self.similarity_fct = similarity_fct
        self.gather_across_devices = gather_across_devices

    def compute_loss_from_embeddings(self, embeddings, labels=None) -> torch.Tensor:
        B = check_rows(type(self).__name__, embeddings)
        anchors = upcast(embeddings[0])  # (B, D)
        columns, offset = gather_columns([upcast(e) for e in embeddings[1:]], self.gather_across_devices)
        candidates = torch.cat(columns)  # (C, D): all positives first, then each negative column
        scores = self.similarity_fct(anchors, candidates) * self.scale  # (B, C)
        targets = torch.arange(offset, offset + B, device=scores.device)  # (B,) anchor i's positive
        return F.cross_entropy(scores, targets)

    def get_config_dict(self) -> dict:
        config = {"scale": self.scale, "similarity_fct": similarity_name(self.similarity_fct)}
        if self.gather_across_devices:  # ST 3.4 has no such key; shown only when switched on
            config["gather_across_devices"] = True
        return config
