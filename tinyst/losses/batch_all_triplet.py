"""BatchAllTripletLoss: the triplet loss over every valid (anchor, positive, negative) of the batch.

Every row is an anchor; every other row with its label is a positive, every row with another label
a negative. All such triplets are scored, and the loss averages over the ones still violating
the margin (the "active" ones), so easy triplets do not dilute the signal:

    loss = sum_{valid a,p,n} relu(d(a, p) - d(a, n) + margin) / #{triplets with loss > 0}

Inputs
    | texts                 | labels          |
    |-----------------------|-----------------|
    | single sentences      | int class label |

Shapes: embeddings = [x] with x (B, D); labels (B,) int. Memory O(B^3) for the triplet cube.
Batch-size sensitive: yes (triplets come from the batch; each label needs >= 2 rows in it).
Recommended sampler: GroupByLabelBatchSampler (GROUP_BY_LABEL).
sentence-transformers v3: losses.BatchAllTripletLoss (same defaults).
Reference: Hermans, Beyer & Leibe (2017), https://arxiv.org/abs/1703.07737
Not included: nothing.
"""
import torch
import torch.nn.functional as F

from tinyst.losses.batch_hard_triplet import BatchTripletLoss, triplet_mask


class BatchAllTripletLoss(BatchTripletLoss):
    def compute_loss_from_embeddings(self, embeddings, labels) -> torch.Tensor:
        d = self.distance_metric(embeddings[0].float())  # (B, B)
        cube = d[:, :, None] - d[:, None, :] + self.triplet_margin  # (B, B, B): [a, p, n]
        cube = F.relu(cube * triplet_mask(labels))  # invalid triplets count 0
        n_active = (cube > 1e-16).sum()  # triplets that still violate the margin
        return cube.sum() / (n_active + 1e-16)  # 0 (not NaN) when none is active
