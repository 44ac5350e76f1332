"""BERT as a stack of flat blocks: embeddings -> N x (attention, MLP) -> token states.

Reproduces HF transformers' `BertModel` (post-LayerNorm, absolute positions, token types) to
fp32 precision; MiniLM checkpoints are BERTs too. Attention goes through
`F.scaled_dot_product_attention` (ops.py; memory-lean ops in fp32 CPU training, oneDNN matmuls in encode).
Reference: Devlin et al. 2018, https://arxiv.org/abs/1810.04805; transformers `modeling_bert.py`.
Not included: cross-attention, KV caches, head masks, attention outputs, the MLM/NSP heads.

Glossary: B batch, T tokens, D hidden size, H heads, Dh = D // H head width.
"""
from dataclasses import dataclass, fields

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from tinyst.models.ops import ACTIVATIONS, Dropout, attention, linear, mlp, to_packed, to_padded


@dataclass
class BertConfig:
    """Field names are the hub's config.json keys, so loading is a filtered **kwargs."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    initializer_range: float = 0.02
    relative_attention_num_buckets: int = 32  # MPNet only

    @classmethod
    def from_dict(cls, cfg: dict):
        known = {f.name for f in fields(cls)}
        config = cls(**{k: v for k, v in cfg.items() if k in known and v is not None})
        if config.hidden_act not in ACTIVATIONS:
            raise ValueError(f"unsupported hidden_act {config.hidden_act!r}; expected one of {sorted(ACTIVATIONS)}")
        if config.hidden_size % config.num_attention_heads:
            raise ValueError(
                f"hidden_size {config.hidden_size} is not divisible by num_attention_heads {config.num_attention_heads}"
            )
        return config


class SelfAttention(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        D = cfg.hidden_size
        self.n_head = cfg.num_attention_heads
        self.q, self.k, self.v, self.o = (nn.Linear(D, D) for _ in range(4))
        self.dropout = cfg.attention_probs_dropout_prob

    def forward(self, x, bias, pack):
        p = self.dropout if self.training else 0.0
        q, k, v = (linear(x, layer) for layer in (self.q, self.k, self.v))  # (N, D) each
        return linear(attention(q, k, v, bias, p, pack, self.n_head), self.o)  # (N, D)


class Block(nn.Module):
    """One post-LN transformer layer: the whole residual structure is the two lines of forward."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        D, eps = cfg.hidden_size, cfg.layer_norm_eps
        self.attn = SelfAttention(cfg)
        self.ln1 = nn.LayerNorm(D, eps=eps)
        self.fc1 = nn.Linear(D, cfg.intermediate_size)
        self.fc2 = nn.Linear(cfg.intermediate_size, D)
        self.ln2 = nn.LayerNorm(D, eps=eps)
        self.act = cfg.hidden_act
        self.drop = Dropout(cfg.hidden_dropout_prob)

    def forward(self, x, bias, pack):
        x = self.ln1(x + self.drop(self.attn(x, bias, pack)))  # (N, D)
        x = self.ln2(x + self.drop(mlp(x, self.fc1, self.fc2, self.act)))  # (N, D): fc2(act(fc1(x)))
        return x


def padding_bias(attention_mask: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """(B, T) 1/0 mask -> (B, 1, 1, T) additive bias: 0 for tokens, the dtype's minimum for padding."""
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class Encoder(nn.Module):
    """Shared by BERT and MPNet: run the blocks, optionally keeping every layer's output."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.config = cfg
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.num_hidden_layers))
        self.pooler = nn.Linear(cfg.hidden_size, cfg.hidden_size)  # tanh(W h_cls); unused by ST pooling, kept for the file
        self.gradient_checkpointing = False
        self.apply(self._init_weights)

    def _init_weights(self, m):
        # HF's init: N(0, 0.02) weights, zero biases, LayerNorm (1, 0), zero padding row.
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=self.config.initializer_range)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)
        if isinstance(m, nn.Embedding) and m.padding_idx is not None:
            nn.init.zeros_(m.weight[m.padding_idx])

    def run_blocks(self, h, bias, attention_mask, output_hidden_states=False):
        """Run the blocks on packed tokens: linear layers never see padding, only attention does."""
        B, T, _ = h.shape
        mask = attention_mask.reshape(-1).bool()  # (B*T,)
        idx = None if bool(mask.all()) else mask.nonzero().squeeze(1)  # (N,) positions of real tokens
        pack = (idx, B, T)
        x = to_packed(h, idx)  # (N, D)
        states = [h]
        for block in self.blocks:
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(block, x, bias, pack, use_reentrant=False)
            else:
                x = block(x, bias, pack)
            if output_hidden_states:
                states.append(to_padded(x, idx, B, T))
        # subtle: padded positions come out as zeros (HF leaves garbage there); every ST pooling masks them
        return to_padded(x, idx, B, T), (states if output_hidden_states else None)


class BertEmbeddings(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        D = cfg.hidden_size
        self.word = nn.Embedding(cfg.vocab_size, D, padding_idx=cfg.pad_token_id)
        self.position = nn.Embedding(cfg.max_position_embeddings, D)
        self.token_type = nn.Embedding(cfg.type_vocab_size, D)
        self.ln = nn.LayerNorm(D, eps=cfg.layer_norm_eps)
        self.drop = Dropout(cfg.hidden_dropout_prob)

    def forward(self, input_ids, token_type_ids=None):
        T = input_ids.shape[1]
        pos = torch.arange(T, device=input_ids.device)  # (T,) right padding, so positions ignore the mask
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        h = self.word(input_ids) + self.token_type(token_type_ids) + self.position(pos)  # (B, T, D)
        return self.drop(self.ln(h))


class BertModel(Encoder):
    model_type = "bert"

    def __init__(self, cfg: BertConfig):
        super().__init__(cfg)
        self.emb = BertEmbeddings(cfg)
        self.emb.apply(self._init_weights)

    def forward(self, input_ids, attention_mask, token_type_ids=None, output_hidden_states=False):
        h = self.emb(input_ids, token_type_ids)  # (B, T, D)
        return self.run_blocks(h, padding_bias(attention_mask), attention_mask, output_hidden_states)


# hub key (after prefix stripping) -> tinyst key; "{i}" is the layer index. Used in both directions.
BERT_KEYS = {
    "embeddings.word_embeddings": "emb.word",
    "embeddings.position_embeddings": "emb.position",
    "embeddings.token_type_embeddings": "emb.token_type",
    "embeddings.LayerNorm": "emb.ln",
    "encoder.layer.{i}.attention.self.query": "blocks.{i}.attn.q",
    "encoder.layer.{i}.attention.self.key": "blocks.{i}.attn.k",
    "encoder.layer.{i}.attention.self.value": "blocks.{i}.attn.v",
    "encoder.layer.{i}.attention.output.dense": "blocks.{i}.attn.o",
    "encoder.layer.{i}.attention.output.LayerNorm": "blocks.{i}.ln1",
    "encoder.layer.{i}.intermediate.dense": "blocks.{i}.fc1",
    "encoder.layer.{i}.output.dense": "blocks.{i}.fc2",
    "encoder.layer.{i}.output.LayerNorm": "blocks.{i}.ln2",
    "pooler.dense": "pooler",
}


def expand_key_table(table: dict, n_layers: int) -> dict:
    """Expand the '{i}' rows for every layer: hub module name -> tinyst module name."""
    out = {}
    for hub, ours in table.items():
        for i in range(n_layers) if "{i}" in hub else [None]:
            out[hub.format(i=i)] = ours.format(i=i)
    return out


def approx_flops_per_token(cfg: BertConfig, T: int) -> float:
    """Forward FLOPs per token: 2 * (weights touched) + attention (q.k and p.v), for the benchmarks."""
    D, I, L = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    return L * (2 * (4 * D * D + 2 * D * I) + 4 * T * D)
