"""GISTEmbedLoss: in-batch negatives, minus the ones a guide model says are really positives.

Like MultipleNegativesRankingLoss, each anchor must pick its positive, but the candidates are the
anchor-positive, anchor-anchor, positive-positive and anchor-negative similarity blocks, and every
candidate the frozen guide model rates closer to the anchor than the anchor's own positive is
dropped (score -inf): it is probably a false negative. With g = guide cosine:

    keep c for row i  iff  g(a_i, c) <= g(a_i, p_i) - margin        (margin_strategy="absolute")
                           g(a_i, c) <= g(a_i, p_i) * (1 - margin)  ("relative")
    loss = CE( [cos(A,P) | cos(A,A) | cos(P,P) | cos(A,N)] (masked) / temperature,  i )

Inputs
    | texts                          | labels |
    |--------------------------------|--------|
    | (anchor, positive)             | none   |
    | (anchor, positive, negative)   | none   |

Shapes: embeddings[k] (B, D); scores (B, 3B) or (B, 4B); guide embeddings (B, D_guide).
Batch-size sensitive: yes (in-batch negatives).
The guide runs without gradient and in eval mode (ST leaves its mode as it is). If its vocabulary
    differs from the model's, or its max_seq_length is shorter, the texts are decoded from the
    model's token ids and re-tokenized.
gather_across_devices: all columns gathered with gradient (anchors too, for the A-A block), so DDP
    gives the exact union-batch gradient; targets shift by rank * B.
Recommended sampler: NO_DUPLICATES.
sentence-transformers v3: losses.GISTEmbedLoss (v3.4 = margin 0, absolute, both contrasts on; the
    margin/contrast/gather arguments come from ST 4.1-5.1, where the A-A block stays local under gather).
Reference: Solatorio 2024, "GISTEmbed", https://arxiv.org/abs/2402.16829
Not included: nothing.
"""
import torch
import torch.nn.functional as F
from torch import nn

from tinyst.losses.base import EmbeddingLoss
from tinyst.losses.cached import embed_no_grad
from tinyst.losses.multiple_negatives_ranking import check_rows, gather_columns, upcast
from tinyst.util import cos_sim

SOLATORIO_2024 = """@misc{solatorio2024gistembed,
    title={GISTEmbed: Guided In-sample Selection of Training Negatives for Text Embedding Fine-tuning},
    author={Aivin V. Solatorio}, year={2024}, eprint={2402.16829}, archivePrefix={arXiv}, primaryClass={cs.LG}
}"""
DEFAULTS = {"margin_strategy": "absolute", "margin": 0.0, "contrast_anchors": True, "contrast_positives": True,
            "gather_across_devices": False}


def vocab(model) -> dict:
    return model[0].tokenizer.get_vocab()


class GISTEmbedLoss(EmbeddingLoss):
    n_inputs = (2, 3)
    label = None
    citation = SOLATORIO_2024

    def __init__(self, model, guide, temperature: float = 0.01, margin_strategy: str = "absolute",
                 margin: float = 0.0, contrast_anchors: bool = True, contrast_positives: bool = True,
                 gather_across_devices: bool = False):
        super().__init__(model)
        name = type(self).__name__
        if not isinstance(guide, nn.Module) or not hasattr(guide, "tokenize"):
            raise TypeError(f"{name} expects a SentenceTransformer as guide, got {type(guide).__name__}")
        if not temperature > 0:
            raise ValueError(f"{name} expects temperature > 0, got {temperature!r}")
        if margin_strategy not in ("absolute", "relative"):
            raise ValueError(f"{name} expects margin_strategy 'absolute' or 'relative', got {margin_strategy!r}")
        self.guide = guide
        self.temperature = temperature
        self.margin_strategy, self.margin = margin_strategy, margin
        self.contrast_anchors, self.contrast_positives = contrast_anchors, contrast_positives
        self.gather_across_devices = gather_across_devices
        self.must_retokenize = vocab(model) != vocab(guide) or guide.max_seq_length < model.max_seq_length

    def forward(self, sentence_features, labels=None) -> torch.Tensor:
        self.check_inputs(sentence_features, labels)
        embeddings = [self.model(f)["sentence_embedding"] for f in sentence_features]  # K x (B, D)
        return self.compute_loss_from_embeddings(embeddings, labels, **self.loss_context(sentence_features))

    def loss_context(self, sentence_features) -> dict:
        """The guide's embeddings of every column (no gradient, no dropout; in mini-batches for the cached twin)."""
        size = getattr(self, "mini_batch_size", None)
        was_training = self.guide.training
        self.guide.eval()  # subtle: a trainer's loss.train() reaches the guide too; a judge should not be noisy
        try:
            features = self.guide_features(sentence_features)
            return {"guide_embeddings": [embed_no_grad(self.guide, f, size) for f in features]}
        finally:
            self.guide.train(was_training)

    def guide_features(self, sentence_features) -> list[dict]:
        if not self.must_retokenize:
            return list(sentence_features)
        tok = self.model[0].tokenizer
        decode = getattr(tok, "decode_batch", None) or tok.batch_decode  # tokenizers.Tokenizer / HF tokenizer
        out = []
        for f in sentence_features:
            texts = decode(f["input_ids"].tolist(), skip_special_tokens=True)
            out.append({k: v.to(self.guide.device) for k, v in self.guide.tokenize(texts).items()})
        return out

    def compute_loss_from_embeddings(self, embeddings, labels=None, guide_embeddings=None) -> torch.Tensor:
        name = type(self).__name__
        if guide_embeddings is None or len(guide_embeddings) != len(embeddings):
            raise ValueError(f"{name} needs the guide's embeddings of all {len(embeddings)} columns "
                             "(guide_embeddings=...; forward computes them)")
        B = check_rows(name, [*embeddings, *guide_embeddings])
        model_cols, offset = gather_columns([upcast(e) for e in embeddings], self.gather_across_devices)
        guide_cols, _ = gather_columns([upcast(g) for g in guide_embeddings], self.gather_across_devices)
        local = slice(offset, offset + B)  # this rank's rows inside the gathered columns

        # the guide's verdict on each anchor's own pair is the bar every other candidate must stay under
        guide_ap = cos_sim(guide_cols[0][local], guide_cols[1])  # (B, W*B)
        bar = guide_ap.diagonal(offset).unsqueeze(1)  # (B, 1)
        bar = bar - self.margin if self.margin_strategy == "absolute" else bar * (1 - self.margin)
        own = torch.zeros_like(guide_ap, dtype=torch.bool)  # (B, W*B) the true pairs: never dropped
        rows = torch.arange(B, device=own.device)
        own[rows, rows + offset] = True

        def block(row_col, cand_col, protect=None):
            scores = cos_sim(model_cols[row_col][local], model_cols[cand_col])  # (B, W*B)
            drop = cos_sim(guide_cols[row_col][local], guide_cols[cand_col]) > bar  # (B, W*B)
            return scores.masked_fill(drop & ~protect if protect is not None else drop, float("-inf"))

        blocks = [block(0, 1, protect=own)]  # anchor -> positives
        if self.contrast_anchors:
            blocks.append(block(0, 0))  # anchor -> anchors (itself included: guide self-similarity 1 drops it)
        if self.contrast_positives:
            blocks.append(block(1, 1))  # positive -> positives
        blocks += [block(0, k) for k in range(2, len(embeddings))]  # anchor -> each negative column
        scores = torch.cat(blocks, dim=1) / self.temperature  # (B, n_blocks * W*B)
        return F.cross_entropy(scores, torch.arange(offset, offset + B, device=scores.device))

    def get_config_dict(self) -> dict:
        config = {"guide": self.guide, "temperature": self.temperature}
        # keys beyond ST 3.4 are shown only when they differ from the 3.4 behaviour
        config.update({k: getattr(self, k) for k, v in DEFAULTS.items() if getattr(self, k) != v})
        return config
