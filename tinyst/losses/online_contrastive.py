"""OnlineContrastiveLoss: ContrastiveLoss on the hard pairs of the batch only.

A positive pair is hard when it is further apart than the closest negative pair; a negative pair
is hard when it is closer than the furthest positive pair. Easy pairs add nothing, so the
gradient goes where the model confuses the classes. With at most one pair of a kind in the
batch, the mean distance of the other kind is the threshold instead.

    loss = sum_{hard positives} d^2  +  sum_{hard negatives} relu(margin - d)^2      (a sum, not a mean)

Inputs
    | texts                        | labels                            |
    |------------------------------|-----------------------------------|
    | (anchor, positive/negative)  | 1 (similar) or 0 (dissimilar)     |

Shapes: embeddings = [u, v], each (B, D); labels (B,) of 0/1 (int or float).
Batch-size sensitive: yes. Hardness is judged against the other pairs of the batch, and the sum
    grows with B (scale the learning rate accordingly).
Recommended sampler: DefaultBatchSampler (BATCH_SAMPLER).
sentence-transformers v3: losses.OnlineContrastiveLoss (same defaults).
Reference: Hadsell, Chopra & LeCun (CVPR 2006), with online hard-pair mining.
Not included: nothing.
"""
import torch
import torch.nn.functional as F

from tinyst.losses.base import EmbeddingLoss
from tinyst.losses.contrastive import ContrastiveLoss, SiameseDistanceMetric


class OnlineContrastiveLoss(EmbeddingLoss):
    n_inputs = (2, 2)
    label = "binary"
    citation = ContrastiveLoss.citation

    def __init__(self, model, distance_metric=SiameseDistanceMetric.COSINE_DISTANCE, margin: float = 0.5):
        super().__init__(model)
        self.distance_metric = distance_metric
        self.margin = margin

    def compute_loss_from_embeddings(self, embeddings, labels) -> torch.Tensor:
        u, v = (e.float() for e in embeddings)  # (B, D) each
        d = self.distance_metric(u, v)  # (B,)
        pos, neg = d[labels == 1], d[labels == 0]  # (P,), (N,)
        # a negative is hard when closer than the furthest positive; a positive when further than the closest negative
        hard_neg = neg[neg < (pos.max() if len(pos) > 1 else neg.mean())]
        hard_pos = pos[pos > (neg.min() if len(neg) > 1 else pos.mean())]
        return hard_pos.pow(2).sum() + F.relu(self.margin - hard_neg).pow(2).sum()
