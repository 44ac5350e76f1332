"""DistillKLDivLoss: match the student's ranking distribution over candidates to a teacher's.

Teacher scores for (query, candidate_j) are turned into a probability distribution with a softmax,
and the student's similarities into log-probabilities; the loss is their KL divergence. Unlike
MarginMSELoss, only the relative order and spread of the scores matter, not their scale.

    loss = T^2 * mean_i KL( softmax(y_i / T) || softmax(sim(q_i, c_ij) / T) )

Inputs
    | texts                                    | labels                                          |
    |------------------------------------------|-------------------------------------------------|
    | (query, positive, negative)              | teacher scores [T(q, p), T(q, n)], (B, 2)       |
    | (query, positive, negative_1..k)         | teacher scores [T(q, p), T(q, n_1)...], (B, k+1) |

Shapes: embeddings = [q, c_1..c_N] with N >= 2, each (B, D); labels (B, N).
Batch-size sensitive: no (each row's candidates are its own columns).
Recommended sampler: DefaultBatchSampler (BATCH_SAMPLER).
sentence-transformers: losses.DistillKLDivLoss, new in v5.0 (not in v3.4); tinyst follows v5.0.1+
    (temperature default 1.0; T^2 undoes the temperature's shrinking of the gradient).
Reference: Lin, Yang & Lin, "Distilling Dense Representations for Ranking using Tightly-Coupled
    Teachers" (2020), https://arxiv.org/abs/2010.11386
Not included: separate student/teacher temperatures.
"""
import math

import torch
import torch.nn.functional as F

from tinyst import util
from tinyst.losses.base import EmbeddingLoss


class DistillKLDivLoss(EmbeddingLoss):
    n_inputs = (3, None)
    label = "vector"
    citation = """@misc{lin2020distillingdenserepresentationsranking,
    title={Distilling Dense Representations for Ranking using Tightly-Coupled Teachers},
    author={Sheng-Chieh Lin and Jheng-Hong Yang and Jimmy Lin},
    year={2020}, eprint={2010.11386}, archivePrefix={arXiv},
}"""

    def __init__(self, model, similarity_fct=util.pairwise_dot_score, temperature: float = 1.0):
        super().__init__(model)
        if not 0 < temperature < math.inf:
            raise ValueError(f"DistillKLDivLoss needs a positive finite temperature, got {temperature}")
        self.similarity_fct = similarity_fct
        self.temperature = temperature

    def compute_loss_from_embeddings(self, embeddings, labels) -> torch.Tensor:
        q, *candidates = (e.float() for e in embeddings)  # (B, D) each
        if labels.shape != (len(q), len(candidates)):
            raise ValueError(
                f"DistillKLDivLoss expects teacher scores of shape ({len(q)}, {len(candidates)}) "
                f"(batch, candidate columns), got {tuple(labels.shape)}"
            )
        T = self.temperature
        student = torch.stack([self.similarity_fct(q, c) for c in candidates], dim=1)  # (B, N)
        log_p_student = F.log_softmax(student / T, dim=1)  # (B, N)
        p_teacher = F.softmax(labels.detach().float() / T, dim=1)  # (B, N)
        return F.kl_div(log_p_student, p_teacher, reduction="batchmean") * T**2

    def get_config_dict(self) -> dict:
        return {"similarity_fct": self.similarity_fct.__name__, "temperature": self.temperature}
