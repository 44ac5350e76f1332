"""MPNet = BERT blocks + a relative-position bias shared by every layer + padding-aware positions.

Only the deltas from bert.py live here: embeddings without token types whose positions count
real tokens from padding_idx + 1, and the T5-style bucketed relative-position bias that is
computed once per forward and added to the attention scores in every layer.
Reference: Song et al. 2020, https://arxiv.org/abs/2004.09297; transformers `modeling_mpnet.py`.
Not included: the MLM head, two-stream (permuted) pre-training attention.
"""
import math

import torch
from torch import nn

from tinyst.models.bert import BertConfig, Encoder, padding_bias
from tinyst.models.ops import Dropout

PAD = 1  # MPNet's padding_idx, for both token and position embeddings


def relative_position_bucket(rel: torch.Tensor, num_buckets=32, max_distance=128) -> torch.Tensor:
    """rel = key index - query index -> bucket id in [0, num_buckets). Half the buckets per
    direction; exact buckets for |rel| < num_buckets/4, log-spaced buckets beyond, capped."""
    half = num_buckets // 2
    n = -rel
    ret = (n < 0).long() * half  # keys before the query use the upper half
    n = n.abs()
    exact = half // 2
    # subtle: float32 log and truncation toward zero, exactly as HF computes it
    log_ratio = torch.log(n.float() / exact) / math.log(max_distance / exact)
    large = (exact + (log_ratio * (half - exact)).long()).clamp(max=half - 1)
    return ret + torch.where(n < exact, n, large)


class MPNetEmbeddings(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        D = cfg.hidden_size
        self.word = nn.Embedding(cfg.vocab_size, D, padding_idx=PAD)
        self.position = nn.Embedding(cfg.max_position_embeddings, D, padding_idx=PAD)
        self.ln = nn.LayerNorm(D, eps=cfg.layer_norm_eps)
        self.drop = Dropout(cfg.hidden_dropout_prob)

    def forward(self, input_ids):
        real = (input_ids != PAD).long()  # (B, T)
        pos = torch.cumsum(real, dim=1) * real + PAD  # (B, T) real tokens 2, 3, ...; padding 1
        return self.drop(self.ln(self.word(input_ids) + self.position(pos)))  # (B, T, D)


class MPNetModel(Encoder):
    model_type = "mpnet"

    def __init__(self, cfg: BertConfig):
        super().__init__(cfg)
        self.emb = MPNetEmbeddings(cfg)
        self.rel_bias = nn.Embedding(cfg.relative_attention_num_buckets, cfg.num_attention_heads)
        self.emb.apply(self._init_weights)
        self.rel_bias.apply(self._init_weights)

    def position_bias(self, T: int, device) -> torch.Tensor:
        idx = torch.arange(T, device=device)
        buckets = relative_position_bucket(idx[None, :] - idx[:, None], self.config.relative_attention_num_buckets)
        return self.rel_bias(buckets).permute(2, 0, 1)[None]  # (1, H, T, T) from sequence index, not positions

    def forward(self, input_ids, attention_mask, token_type_ids=None, output_hidden_states=False):
        h = self.emb(input_ids)  # (B, T, D)
        bias = self.position_bias(input_ids.shape[1], input_ids.device) + padding_bias(attention_mask)  # (B, H, T, T)
        return self.run_blocks(h, bias, attention_mask, output_hidden_states)


MPNET_KEYS = {
    "embeddings.word_embeddings": "emb.word",
    "embeddings.position_embeddings": "emb.position",
    "embeddings.LayerNorm": "emb.ln",
    "encoder.layer.{i}.attention.attn.q": "blocks.{i}.attn.q",
    "encoder.layer.{i}.attention.attn.k": "blocks.{i}.attn.k",
    "encoder.layer.{i}.attention.attn.v": "blocks.{i}.attn.v",
    "encoder.layer.{i}.attention.attn.o": "blocks.{i}.attn.o",
    "encoder.layer.{i}.attention.LayerNorm": "blocks.{i}.ln1",
    "encoder.layer.{i}.intermediate.dense": "blocks.{i}.fc1",
    "encoder.layer.{i}.output.dense": "blocks.{i}.fc2",
    "encoder.layer.{i}.output.LayerNorm": "blocks.{i}.ln2",
    "encoder.relative_attention_bias": "rel_bias",
    "pooler.dense": "pooler",
}
