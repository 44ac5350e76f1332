"""MultipleNegativesSymmetricRankingLoss: InfoNCE in both directions.

MultipleNegativesRankingLoss asks each anchor to find its positive among all candidates; this
loss also asks each positive to find its anchor among all anchors, and averages the two:

    loss = 1/2 [ CE(s * sim(A, [P; N_1; ...]), i)  +  CE(s * sim(P, A), i) ]

Hard-negative columns, if any, are candidates in the first (anchor -> text) direction only.

Inputs
    | texts                                          | labels |
    |------------------------------------------------|--------|
    | (anchor, positive)                             | none   |
    | (anchor, positive, negative_1, ..., negative_k) | none   |

Shapes: embeddings[k] (B, D); forward scores (B, C), backward scores (B, B).
Batch-size sensitive: yes (in-batch negatives in both directions).
gather_across_devices: candidates AND anchors gathered with gradient (the backward direction
    ranks all anchors); local rows' targets shift by rank * B.
Recommended sampler: NO_DUPLICATES.
sentence-transformers v3: losses.MultipleNegativesSymmetricRankingLoss (gather_across_devices is ST >= 5.1).
Reference: Henderson et al. 2017, https://arxiv.org/abs/1705.00652 (symmetric variant as in ST).
Not included: nothing.
"""
import torch
import torch.nn.functional as F

from tinyst.losses.multiple_negatives_ranking import (MultipleNegativesRankingLoss, check_rows, gather_columns,
                                                        upcast)


class MultipleNegativesSymmetricRankingLoss(MultipleNegativesRankingLoss):
    def compute_loss_from_embeddings(self, embeddings, labels=None) -> torch.Tensor:
        B = check_rows(type(self).__name__, embeddings)
        anchors, positives = upcast(embeddings[0]), upcast(embeddings[1])  # (B, D) each
        columns, offset = gather_columns([upcast(e) for e in embeddings], self.gather_across_devices)
        all_anchors, candidates = columns[0], torch.cat(columns[1:])  # (W*B, D), (C, D)
        targets = torch.arange(offset, offset + B, device=anchors.device)  # (B,)
        forward_scores = self.similarity_fct(anchors, candidates) * self.scale  # (B, C): anchor -> texts
        backward_scores = self.similarity_fct(positives, all_anchors) * self.scale  # (B, W*B): positive -> anchors
        return (F.cross_entropy(forward_scores, targets) + F.cross_entropy(backward_scores, targets)) / 2
