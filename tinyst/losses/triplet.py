"""TripletLoss: the anchor must be closer to its positive than to its negative, by a margin.

    loss = mean_i relu(d(a_i, p_i) - d(a_i, n_i) + triplet_margin)

with d = distance_metric: Euclidean (default), Manhattan or cosine distance 1 - cos. These are
positive distances, as in ST v3.x-v4.x. (ST v5 switched EUCLIDEAN/MANHATTAN to negated
"similarities", which flips the default loss; tinyst keeps the v3 meaning.)

Inputs
    | texts                         | labels |
    |-------------------------------|--------|
    | (anchor, positive, negative)  | none   |

Shapes: embeddings = [a, p, n], each (B, D).
Batch-size sensitive: no (each triplet on its own).
Recommended sampler: DefaultBatchSampler (BATCH_SAMPLER).
sentence-transformers v3: losses.TripletLoss and losses.TripletDistanceMetric (same defaults).
Reference: Schroff, Kalenichenko & Philbin, "FaceNet" (2015), https://arxiv.org/abs/1503.03832
Not included: nothing.
"""
import torch
import torch.nn.functional as F

from tinyst.losses.base import EmbeddingLoss
from tinyst.losses.contrastive import metric_name


class TripletDistanceMetric:
    """Row-wise distances (B, D) x (B, D) -> (B,), larger = further apart."""

    @staticmethod
    def COSINE(x, y):
        return 1 - F.cosine_similarity(x, y)

    # subtle: F.pairwise_distance adds eps=1e-6 to the difference, keeping the sqrt's gradient finite
    @staticmethod
    def EUCLIDEAN(x, y):
        return F.pairwise_distance(x, y, p=2)

    @staticmethod
    def MANHATTAN(x, y):
        return F.pairwise_distance(x, y, p=1)


class TripletLoss(EmbeddingLoss):
    n_inputs = (3, 3)
    label = None
    citation = """@misc{hermans2017defense,
    title={In Defense of the Triplet Loss for Person Re-Identification},
    author={Alexander Hermans and Lucas Beyer and Bastian Leibe},
    year={2017}, eprint={1703.07737}, archivePrefix={arXiv},
}"""

    def __init__(self, model, distance_metric=TripletDistanceMetric.EUCLIDEAN, triplet_margin: float = 5):
        super().__init__(model)
        self.distance_metric = distance_metric
        self.triplet_margin = triplet_margin

    def compute_loss_from_embeddings(self, embeddings, labels=None) -> torch.Tensor:
        a, p, n = (e.float() for e in embeddings)  # (B, D) each
        d_pos, d_neg = self.distance_metric(a, p), self.distance_metric(a, n)  # (B,) each
        return F.relu(d_pos - d_neg + self.triplet_margin).mean()

    def get_config_dict(self) -> dict:
        return {
            "distance_metric": metric_name(TripletDistanceMetric, self.distance_metric),
            "triplet_margin": self.triplet_margin,
        }
