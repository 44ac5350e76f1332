"""ContrastiveLoss: pull similar pairs together, push dissimilar pairs at least `margin` apart.

    loss = mean_i  1/2 * [ y_i * d_i^2  +  (1 - y_i) * relu(margin - d_i)^2 ]

with d = distance_metric(u, v): cosine distance 1 - cos (default), Euclidean or Manhattan.

Inputs
    | texts                        | labels                            |
    |------------------------------|-----------------------------------|
    | (anchor, positive/negative)  | 1 (similar) or 0 (dissimilar)     |

Shapes: embeddings = [u, v], each (B, D); labels (B,) of 0/1 (int or float).
Batch-size sensitive: no (each row on its own).
Recommended sampler: DefaultBatchSampler (BATCH_SAMPLER).
sentence-transformers v3: losses.ContrastiveLoss and losses.SiameseDistanceMetric (same defaults;
    size_average=False sums instead of averaging).
Reference: Hadsell, Chopra & LeCun, "Dimensionality Reduction by Learning an Invariant Mapping"
    (CVPR 2006), http://yann.lecun.com/exdb/publis/pdf/hadsell-chopra-lecun-06.pdf
Not included: nothing.
"""
import torch
import torch.nn.functional as F

from tinyst.losses.base import EmbeddingLoss


class SiameseDistanceMetric:
    """Row-wise distances (B, D) x (B, D) -> (B,), larger = further apart."""

    # subtle: F.pairwise_distance adds eps=1e-6 to the difference, so identical texts
    # (distance 0) get a finite gradient instead of NaN from the sqrt
    @staticmethod
    def EUCLIDEAN(x, y):
        return F.pairwise_distance(x, y, p=2)

    @staticmethod
    def MANHATTAN(x, y):
        return F.pairwise_distance(x, y, p=1)

    @staticmethod
    def COSINE_DISTANCE(x, y):
        return 1 - F.cosine_similarity(x, y)


def metric_name(holder: type, fn) -> str:
    """'SiameseDistanceMetric.COSINE_DISTANCE' for a built-in metric, else the function's name."""
    for name, value in vars(holder).items():
        if getattr(value, "__func__", value) is fn:
            return f"{holder.__name__}.{name}"
    return getattr(fn, "__name__", repr(fn))


class ContrastiveLoss(EmbeddingLoss):
    n_inputs = (2, 2)
    label = "binary"
    citation = """@inproceedings{hadsell2006dimensionality,
    author={Hadsell, R. and Chopra, S. and LeCun, Y.}, booktitle={CVPR 2006},
    title={Dimensionality Reduction by Learning an Invariant Mapping}, year={2006}, volume={2}, pages={1735-1742},
}"""

    def __init__(self, model, distance_metric=SiameseDistanceMetric.COSINE_DISTANCE, margin: float = 0.5,
                 size_average: bool = True):
        super().__init__(model)
        self.distance_metric = distance_metric
        self.margin = margin
        self.size_average = size_average

    def compute_loss_from_embeddings(self, embeddings, labels) -> torch.Tensor:
        u, v = (e.float() for e in embeddings)  # (B, D) each
        d = self.distance_metric(u, v)  # (B,)
        y = labels.float()  # (B,)
        losses = 0.5 * (y * d.pow(2) + (1 - y) * F.relu(self.margin - d).pow(2))  # (B,)
        return losses.mean() if self.size_average else losses.sum()

    def get_config_dict(self) -> dict:
        return {
            "distance_metric": metric_name(SiameseDistanceMetric, self.distance_metric),
            "margin": self.margin,
            "size_average": self.size_average,
        }
