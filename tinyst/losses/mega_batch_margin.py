"""MegaBatchMarginLoss: a margin loss against the hardest in-batch negative of a very large batch.

For each anchor the hardest negative is the other row's positive it is most similar to; the
positive should score above `positive_margin`, that negative below `negative_margin`:

    loss = mean_i [ relu(m_pos - cos(a_i, p_i)) + relu(max_{j != i} cos(a_i, p_j) - m_neg) ]

Inputs
    | texts                 | labels |
    |-----------------------|--------|
    | (anchor, positive)    | none   |

Shapes: embeddings [a, p], each (B, D); scores (B, B).
Batch-size sensitive: yes; meant for very large batches (the paper uses ~500-1000 rows).
The mini-batched version (default): embed all positives without gradient (in eval mode) to pick
    each anchor's hardest negative, then, `mini_batch_size` anchors at a time, embed the anchors,
    their positives and their hardest negatives with gradient and take the margin loss.
    subtle: it calls backward() itself for every mini-batch but the last, whose loss it returns,
    so loss scaling (fp16 GradScaler, 1/n gradient accumulation) does not reach those mini-batches,
    and the returned value covers only the last mini-batch. Use use_mini_batched_version=False
    (plain full-batch loss) when that matters.
Recommended sampler: NO_DUPLICATES.
sentence-transformers v3: losses.MegaBatchMarginLoss (same defaults). Two deliberate differences:
    ST 3.4.1 tests `end_idx < len(cos_scores)`, the mini-batch's own row count, which is never
    true, so it never back-propagates the earlier mini-batches (only the last one trains; equal to
    tinyst when B <= mini_batch_size); and it always switches the model to train() afterwards,
    where tinyst restores the previous mode.
Reference: Wieting and Gimpel 2018, "ParaNMT-50M", https://arxiv.org/abs/1711.05732
Not included: nothing.
"""
import torch
import torch.nn.functional as F

from tinyst.losses.base import EmbeddingLoss
from tinyst.losses.cached import batch_rows
from tinyst.losses.multiple_negatives_ranking import check_rows, upcast
from tinyst.util import cos_sim


def margin_losses(anchors, positives, negatives, positive_margin, negative_margin) -> torch.Tensor:
    """(B,) per-row margin losses from three (B, D) embedding tensors."""
    anchors, positives, negatives = upcast(anchors), upcast(positives), upcast(negatives)
    pos = F.cosine_similarity(anchors, positives)  # (B,)
    neg = F.cosine_similarity(anchors, negatives)  # (B,)
    return F.relu(positive_margin - pos) + F.relu(neg - negative_margin)


class MegaBatchMarginLoss(EmbeddingLoss):
    n_inputs = (2, 2)
    label = None
    citation = """@inproceedings{wieting-gimpel-2018-paranmt,
    title = "{P}ara{NMT}-50{M}: Pushing the Limits of Paraphrastic Sentence Embeddings with Millions of Machine Translations",
    author = "Wieting, John and Gimpel, Kevin", booktitle = "Proceedings of ACL 2018", year = "2018",
    url = "https://aclanthology.org/P18-1042", pages = "451--462",
}"""

    def __init__(self, model, positive_margin: float = 0.8, negative_margin: float = 0.3,
                 use_mini_batched_version: bool = True, mini_batch_size: int = 50):
        super().__init__(model)
        if not isinstance(mini_batch_size, int) or mini_batch_size < 1:
            raise ValueError(f"MegaBatchMarginLoss expects mini_batch_size to be a positive int, "
                             f"got {mini_batch_size!r}")
        self.positive_margin, self.negative_margin = positive_margin, negative_margin
        self.use_mini_batched_version = use_mini_batched_version
        self.mini_batch_size = mini_batch_size

    def compute_loss_from_embeddings(self, embeddings, labels=None) -> torch.Tensor:
        B = check_rows(type(self).__name__, embeddings)
        a, p = (upcast(e) for e in embeddings)  # (B, D) each
        scores = cos_sim(a, p)  # (B, B)
        # subtle: -2 pushes the diagonal below any cosine, so max picks the hardest *other* positive
        hardest = (scores - 2 * torch.eye(B, device=scores.device)).max(dim=1).values  # (B,)
        pos = scores.diagonal()  # (B,)
        return (F.relu(self.positive_margin - pos) + F.relu(hardest - self.negative_margin)).mean()

    def forward(self, sentence_features, labels=None) -> torch.Tensor:
        if not self.use_mini_batched_version:
            return super().forward(sentence_features, labels)
        self.check_inputs(sentence_features, labels)
        anchor, positive = sentence_features
        B, m = batch_rows(positive), self.mini_batch_size
        was_training = self.model.training
        with torch.no_grad():
            self.model.eval()  # the negative *choice* should not depend on dropout
            all_positives = self.model(positive)["sentence_embedding"]  # (B, D)
            self.model.train(was_training)
        losses = []
        for b in range(0, B, m):
            rows = slice(b, b + m)
            a = self.model({k: v[rows] for k, v in anchor.items()})["sentence_embedding"]  # (m, D)
            with torch.no_grad():
                scores = cos_sim(a, all_positives)  # (m, B)
                own = torch.arange(a.shape[0], device=scores.device)
                scores[own, own + b] -= 2  # not its own positive
                hardest = scores.argmax(dim=1)  # (m,) row index of each anchor's hardest negative
            p = self.model({k: v[rows] for k, v in positive.items()})["sentence_embedding"]  # (m, D)
            n = self.model({k: v[hardest] for k, v in positive.items()})["sentence_embedding"]  # (m, D)
            loss = margin_losses(a, p, n, self.positive_margin, self.negative_margin).mean()
            if b + m < B and torch.is_grad_enabled():
                loss.backward()  # free this mini-batch's graph now; the caller backprops the last one
                loss = loss.detach()
            losses.append(loss)
        # with gradient: the last mini-batch's loss (as ST); without: the mean over mini-batches
        return losses[-1] if torch.is_grad_enabled() else torch.stack(losses).mean()
