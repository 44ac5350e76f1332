"""ContrastiveTensionLossInBatchNegatives: unsupervised training from plain sentences, two encoders.

A frozen-at-start copy of the model (model1) and the model being trained (model2) embed the same
sentence; each sentence must recognise its twin among the batch's other sentences, in both
directions, with a learnable temperature:

    S = sim(model1(s), model2(s)) * exp(logit_scale);   loss = 1/2 [ CE(S, i) + CE(S^T, i) ]

Inputs
    | texts                                         | labels |
    |-----------------------------------------------|--------|
    | (sentence, sentence): the same text twice     | none   |

Shapes: embeddings [model1(col 0), model2(col 1)], each (B, D); S (B, B).
Batch-size sensitive: yes (in-batch negatives).
model1 is `copy.deepcopy(model)` and `logit_scale` (init log(scale)) is a parameter; both belong to
    the loss, so an optimizer over loss.parameters() trains them too; only model2 (= `model`) is
    what you save and use afterwards.
Recommended sampler: NO_DUPLICATES (a repeated sentence would be a false negative).
sentence-transformers v3: losses.ContrastiveTensionLossInBatchNegatives (same defaults).
Reference: Carlsson et al. 2021, "Semantic Re-tuning with Contrastive Tension", ICLR,
    https://openreview.net/forum?id=Ov_sMNau-PF
Not included: the legacy ContrastiveTensionLoss with its ContrastiveTensionDataLoader (pairs
    labelled identical/random, built by a custom DataLoader, which does not fit the trainer).
"""
import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from tinyst import util
from tinyst.losses.base import EmbeddingLoss
from tinyst.losses.multiple_negatives_ranking import check_rows, upcast


class ContrastiveTensionLossInBatchNegatives(EmbeddingLoss):
    n_inputs = (2, 2)
    label = None
    citation = """@inproceedings{carlsson2021semantic,
    title={Semantic Re-tuning with Contrastive Tension},
    author={Fredrik Carlsson and Amaru Cuba Gyllensten and Evangelia Gogoulou and Erik Ylip{\\"a}{\\"a} Hellqvist and Magnus Sahlgren},
    booktitle={International Conference on Learning Representations}, year={2021},
    url={https://openreview.net/forum?id=Ov_sMNau-PF}
}"""

    def __init__(self, model, scale: float = 20.0, similarity_fct=util.cos_sim):
        super().__init__(model)  # self.model is ST's model2: the one that is kept
        if not scale > 0:
            raise ValueError(f"ContrastiveTensionLossInBatchNegatives expects scale > 0, got {scale!r}")
        self.model1 = copy.deepcopy(model)
        self.similarity_fct = similarity_fct
        self.logit_scale = nn.Parameter(torch.tensor(math.log(scale)))  # learnable log inverse temperature

    @property
    def model2(self):
        return self.model

    def forward(self, sentence_features, labels=None) -> torch.Tensor:
        self.check_inputs(sentence_features, labels)
        first, second = sentence_features
        embeddings = [self.model1(first)["sentence_embedding"], self.model(second)["sentence_embedding"]]
        return self.compute_loss_from_embeddings(embeddings, labels)

    def compute_loss_from_embeddings(self, embeddings, labels=None) -> torch.Tensor:
        B = check_rows(type(self).__name__, embeddings)
        a, b = (upcast(e) for e in embeddings)  # (B, D) each: model1's and model2's view of the same texts
        scores = self.similarity_fct(a, b) * self.logit_scale.exp()  # (B, B)
        targets = torch.arange(B, device=scores.device)  # (B,)
        return (F.cross_entropy(scores, targets) + F.cross_entropy(scores.T, targets)) / 2

