"""SoftmaxLoss: train embeddings through a linear classifier over the pair (SBERT's NLI recipe).

The two embeddings are combined into one feature vector, a linear layer maps it to class
logits, and cross-entropy trains both the classifier and the encoder:

    logits = W [u; v; |u - v|; (u * v)] + b       loss = CE(logits, y)

Which parts enter the concatenation is set by the three `concatenation_*` flags (default
u, v, |u - v|). The classifier is a parameter of the loss, not of the model: the optimizer
must be built over the loss's parameters, and it is not saved with the model.

Inputs
    | texts                      | labels                          |
    |----------------------------|---------------------------------|
    | (sentence_A, sentence_B)   | int class in [0, num_labels)    |

Shapes: embeddings = [u, v], each (B, D); labels (B,) int64. Called with labels=None it returns
    (embeddings, logits (B, num_labels)) instead of a loss, for accuracy evaluation.
Batch-size sensitive: no (each row on its own).
Recommended sampler: DefaultBatchSampler (BATCH_SAMPLER).
sentence-transformers v3: losses.SoftmaxLoss (same arguments; both dimensions are required).
Reference: Reimers & Gurevych, "Sentence-BERT" (2019), https://arxiv.org/abs/1908.10084
Not included: nothing.
"""
import torch
from torch import nn

from tinyst.losses.base import EmbeddingLoss, check_inputs
from tinyst.losses.cosine_similarity import SBERT_CITATION


class SoftmaxLoss(EmbeddingLoss):
    n_inputs = (2, 2)
    label = "int"
    citation = SBERT_CITATION

    def __init__(
        self,
        model,
        sentence_embedding_dimension: int,
        num_labels: int,
        concatenation_sent_rep: bool = True,
        concatenation_sent_difference: bool = True,
        concatenation_sent_multiplication: bool = False,
        loss_fct=nn.CrossEntropyLoss(),
    ):
        super().__init__(model)
        n_vectors = 2 * concatenation_sent_rep + concatenation_sent_difference + concatenation_sent_multiplication
        if n_vectors == 0:
            raise ValueError("SoftmaxLoss needs at least one concatenation_* flag set to True")
        if num_labels < 1 or sentence_embedding_dimension < 1:
            raise ValueError(
                f"SoftmaxLoss needs positive sizes, got sentence_embedding_dimension={sentence_embedding_dimension}, "
                f"num_labels={num_labels}"
            )
        self.num_labels = num_labels
        self.concatenation_sent_rep = concatenation_sent_rep
        self.concatenation_sent_difference = concatenation_sent_difference
        self.concatenation_sent_multiplication = concatenation_sent_multiplication
        device = getattr(model, "device", None)
        self.classifier = nn.Linear(n_vectors * sentence_embedding_dimension, num_labels, device=device)
        self.loss_fct = loss_fct

    def forward(self, sentence_features, labels=None):
        if labels is None:  # evaluation mode: no label needed, return the logits
            check_inputs(type(self).__name__, self.n_inputs, None, len(sentence_features), None)
            embeddings = [self.model(f)["sentence_embedding"] for f in sentence_features]  # 2 x (B, D)
            return embeddings, self.logits(embeddings)
        return super().forward(sentence_features, labels)

    def logits(self, embeddings) -> torch.Tensor:
        u, v = embeddings  # (B, D) each
        parts = []
        if self.concatenation_sent_rep:
            parts += [u, v]
        if self.concatenation_sent_difference:
            parts.append(torch.abs(u - v))
        if self.concatenation_sent_multiplication:
            parts.append(u * v)
        features = torch.cat(parts, dim=1)  # (B, n_vectors * D)
        if features.shape[1] != self.classifier.in_features:
            raise ValueError(
                f"SoftmaxLoss was built for sentence_embedding_dimension={self.classifier.in_features // len(parts)}, "
                f"but the model gives embeddings of dimension {u.shape[1]}"
            )
        return self.classifier(features.to(self.classifier.weight.dtype))  # (B, num_labels)

    def compute_loss_from_embeddings(self, embeddings, labels) -> torch.Tensor:
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_labels):
            got = labels.unique().tolist()[:10]
            raise ValueError(f"SoftmaxLoss expects class labels in [0, {self.num_labels}), got values {got}")
        return self.loss_fct(self.logits([e.float() for e in embeddings]), labels.view(-1))
