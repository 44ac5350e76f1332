"""BatchHardSoftMarginTripletLoss: BatchHardTripletLoss with a soft margin instead of a fixed one.

The hinge relu(x + margin) becomes softplus(x) = log(1 + exp(x)): no margin to tune, and even
well-separated anchors keep a small gradient.

    loss = mean_a log(1 + exp(max_{p} d(a, p) - min_{n} d(a, n)))

Inputs
    | texts                 | labels          |
    |-----------------------|-----------------|
    | single sentences      | int class label |

Shapes: embeddings = [x] with x (B, D); labels (B,) int.
Batch-size sensitive: yes (positives and negatives come from the batch; each label needs >= 2 rows).
Recommended sampler: GroupByLabelBatchSampler (GROUP_BY_LABEL).
sentence-transformers v3: losses.BatchHardSoftMarginTripletLoss (same defaults).
Reference: Hermans, Beyer & Leibe (2017), https://arxiv.org/abs/1703.07737, section 3.
Not included: nothing.
"""
import torch

from tinyst.losses.batch_hard_triplet import BatchTripletLoss, euclidean_distance, hardest_distances


class BatchHardSoftMarginTripletLoss(BatchTripletLoss):
    def __init__(self, model, distance_metric=euclidean_distance):
        super().__init__(model, distance_metric)

    def compute_loss_from_embeddings(self, embeddings, labels) -> torch.Tensor:
        d = self.distance_metric(embeddings[0].float())  # (B, B)
        hardest_pos, hardest_neg = hardest_distances(d, labels)  # (B,) each
        return torch.log1p(torch.exp(hardest_pos - hardest_neg)).mean()  # softplus, written out as ST does
