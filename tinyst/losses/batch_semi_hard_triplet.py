"""BatchSemiHardTripletLoss: FaceNet's semi-hard negatives, mined in the batch.

For every positive pair (a, p) of the batch (same label, a != p), the negative is the closest one
that is still further from a than p is (semi-hard: it does not overtake the positive, but sits
inside the margin). When no negative is further than p, the furthest negative is used instead.

    loss = sum_{positive pairs (a, p)} relu(d(a, p) - d(a, n*(a, p)) + margin) / #positive pairs

Inputs
    | texts                 | labels          |
    |-----------------------|-----------------|
    | single sentences      | int class label |

Shapes: embeddings = [x] with x (B, D); labels (B,) int. Memory O(B^3) for the mining cube.
Batch-size sensitive: yes (pairs and negatives come from the batch; each label needs >= 2 rows).
    A batch without any positive pair gives 0 and a warning (ST returns NaN there).
Recommended sampler: GroupByLabelBatchSampler (GROUP_BY_LABEL).
sentence-transformers v3: losses.BatchSemiHardTripletLoss (same defaults).
Reference: Schroff, Kalenichenko & Philbin, "FaceNet" (2015), https://arxiv.org/abs/1503.03832;
    the mining follows tensorflow_addons' triplet_semihard_loss.
Not included: nothing.
"""
import warnings

import torch
import torch.nn.functional as F

from tinyst.losses.batch_hard_triplet import BatchTripletLoss, anchor_negative_mask, anchor_positive_mask


class BatchSemiHardTripletLoss(BatchTripletLoss):
    citation = """@misc{schroff2015facenet,
    title={FaceNet: A Unified Embedding for Face Recognition and Clustering},
    author={Florian Schroff and Dmitry Kalenichenko and James Philbin},
    year={2015}, eprint={1503.03832}, archivePrefix={arXiv},
}"""

    @property
    def margin(self) -> float:  # ST's attribute name in this loss
        return self.triplet_margin

    def compute_loss_from_embeddings(self, embeddings, labels) -> torch.Tensor:
        d = self.distance_metric(embeddings[0].float())  # (B, B)
        pos, neg = anchor_positive_mask(labels), anchor_negative_mask(labels)  # (B, B) each
        if not pos.any():
            warnings.warn("BatchSemiHardTripletLoss: no two rows of the batch share a label; the loss is 0")
            return (d * 0).sum()
        inf = torch.finfo(d.dtype).max
        # [a, p, n]: n is a negative of a and further from a than p is
        further = neg[:, None, :] & (d[:, None, :] > d[:, :, None])  # (B, B, B)
        semi_hard = torch.where(further, d[:, None, :], inf).min(dim=2).values  # (B, B)
        # fallback when nothing is further: the furthest negative (the row minimum when a has no negative)
        furthest = torch.where(neg.any(dim=1), d.masked_fill(~neg, -inf).max(dim=1).values, d.min(dim=1).values)  # (B,)
        negative = torch.where(further.any(dim=2), semi_hard, furthest[:, None])  # (B, B)
        losses = F.relu((d - negative + self.triplet_margin) * pos)  # (B, B); only positive pairs count
        return losses.sum() / pos.sum()
