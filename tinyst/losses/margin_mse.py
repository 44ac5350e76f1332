"""MarginMSELoss: match the teacher's score margin between a positive and a negative passage.

A cross-encoder teacher scores (query, positive) and (query, negative); the student bi-encoder only
has to reproduce the difference of the two scores, not the scores themselves:

    loss = mean_{i,k} ((sim(q_i, p_i) - sim(q_i, n_ik)) - margin_ik)^2

Inputs
    | texts                                  | labels                                             |
    |----------------------------------------|----------------------------------------------------|
    | (query, positive, negative)            | margin T(q, p) - T(q, n), shape (B,) or (B, 1)     |
    | (query, positive, negative_1..k)       | margins, shape (B, k)                              |
    | (query, positive, negative_1..k)       | raw teacher scores [T(q, p), T(q, n_1)...], (B, k+1) |

Shapes: embeddings = [q, p, n_1..n_k], each (B, D); labels as above.
Batch-size sensitive: no (each row on its own).
Recommended sampler: DefaultBatchSampler (BATCH_SAMPLER).
sentence-transformers v3: losses.MarginMSELoss (v3.4 takes exactly one negative and labels (B,);
    several negatives and raw teacher scores follow later ST versions).
Reference: Hofstatter et al., "Improving Efficient Neural Ranking Models with Cross-Architecture
    Knowledge Distillation" (2020), https://arxiv.org/abs/2010.02666
Not included: nothing.
"""
import torch
import torch.nn.functional as F

from tinyst import util
from tinyst.losses.base import EmbeddingLoss


class MarginMSELoss(EmbeddingLoss):
    n_inputs = (3, None)
    label = "any"
    citation = """@misc{hofstatter2021improving,
    title={Improving Efficient Neural Ranking Models with Cross-Architecture Knowledge Distillation},
    author={Sebastian Hofstatter and Sophia Althammer and Michael Schroder and Mete Sertkan and Allan Hanbury},
    year={2021}, eprint={2010.02666}, archivePrefix={arXiv},
}"""

    def __init__(self, model, similarity_fct=util.pairwise_dot_score):
        super().__init__(model)
        self.similarity_fct = similarity_fct

    def compute_loss_from_embeddings(self, embeddings, labels) -> torch.Tensor:
        q, p, *negatives = (e.float() for e in embeddings)  # (B, D) each
        pos = self.similarity_fct(q, p)  # (B,)
        pred = torch.stack([pos - self.similarity_fct(q, n) for n in negatives], dim=1)  # (B, k)
        return F.mse_loss(pred, self.target_margins(labels.float(), pred.shape))

    def target_margins(self, labels: torch.Tensor, shape) -> torch.Tensor:
        B, k = shape
        if labels.dim() == 1 and k == 1 and len(labels) == B:
            return labels[:, None]  # (B, 1)
        if labels.dim() == 2 and labels.shape == (B, k):
            return labels  # margins already
        if labels.dim() == 2 and labels.shape == (B, k + 1):
            return labels[:, :1] - labels[:, 1:]  # (B, k): raw teacher scores -> margins
        want = f"({B},) or " if k == 1 else ""
        raise ValueError(
            f"MarginMSELoss with {k} negative column(s) expects labels of shape {want}({B}, {k}) (margins) "
            f"or ({B}, {k + 1}) (teacher scores), got {tuple(labels.shape)}"
        )
