"""The tensor operations BERT/MPNet blocks are built from: packing rows, attention, the MLP's
activation + linear, dropout. Forward outputs are the stock ops'; backward keeps much less.

Packing: linear layers run on the real tokens only, (N, D) rows; attention needs (B, H, T, Dh), so
it pads, runs, and packs again. `_SelectRows`/`_ScatterRows` are index_select/index_copy whose
backward keeps only the row indices (torch's index_copy keeps its whole source for backward).

Memory-lean fp32 CPU training (all-MiniLM-L6-v2, batch 32 pairs: 270 MB kept for backward -> 115 MB):
- dropout: `F.dropout` on CPU keeps a float32 noise tensor; `torch.native_dropout` a bool mask.
- attention with dropout: SDPA has no CPU kernel with dropout, so it runs its math path and keeps
  scores, probabilities, float noise and dropped probabilities (>= 12 bytes per head x query x key).
  `_Attention` keeps packed q, k, v, the bias and a bool mask, and recomputes the probabilities.
- MLP: autograd keeps fc1's output and the activation's output; `_ActLinear` keeps the first and
  recomputes the activation (elementwise, cheap) in backward.
- embeddings: `sparse_embedding_grads` (the trainer's step) back-propagates only the batch's rows.
Dropout draws are the stock ops' (same RNG use); gradients agree to float rounding (tests/test_ops.py).
On CUDA or under autocast the stock ops run: their fused kernels are lean already.
Encode (`onednn_inference`): linear layers run through oneDNN's matmul with the activation fused.
Also here: `return_freed_memory_to_os`, a glibc malloc setting the trainer applies on CPU when
TINYST_LOW_MEMORY=1 (peak RSS -20%, but every step re-faults its pages: about half the speed here).
Not included: custom kernels; everything is plain torch ops.
"""
import ctypes
import functools
import sys
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {
    "gelu": F.gelu,  # exact erf GELU
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_fast": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": torch.tanh,
}


def lean(x: torch.Tensor) -> bool:
    """Use the lean ops: fp32 on CPU without autocast (elsewhere the stock kernels are lean already)."""
    return x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")


# -- packing ---------------------------------------------------------------------------------------
def _pad(x, idx, B: int, T: int):
    """(N, C) -> (B, T, C) with zeros at padded positions (no autograd)."""
    if idx is None:
        return x.view(B, T, -1)
    return x.new_zeros(B * T, x.shape[-1]).index_copy_(0, idx, x).view(B, T, -1)


def _unpad(x, idx):
    """(B, T, C) -> (N, C): the real tokens' rows (no autograd)."""
    x = x.reshape(-1, x.shape[-1])  # (B*T, C)
    return x if idx is None else x.index_select(0, idx)


class _SelectRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, idx):
        ctx.save_for_backward(idx)
        ctx.n_rows = x.shape[0]
        return x.index_select(0, idx)

    @staticmethod
    def backward(ctx, grad):
        (idx,) = ctx.saved_tensors
        return grad.new_zeros(ctx.n_rows, grad.shape[1]).index_copy_(0, idx, grad), None


class _ScatterRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, idx, B, T):
        ctx.save_for_backward(idx)
        return _pad(x, idx, B, T)

    @staticmethod
    def backward(ctx, grad):
        (idx,) = ctx.saved_tensors
        return _unpad(grad, idx), None, None, None


def to_packed(x: torch.Tensor, idx) -> torch.Tensor:
    """(B, T, C) -> (N, C): keep only the real tokens (idx: their flat positions; None = no padding)."""
    x = x.reshape(-1, x.shape[-1])  # (B*T, C)
    return x if idx is None else _SelectRows.apply(x, idx)  # (N, C)


def to_padded(x: torch.Tensor, idx, B: int, T: int) -> torch.Tensor:
    """(N, C) -> (B, T, C) with zeros at padded positions (the inverse of to_packed)."""
    return x.view(B, T, -1) if idx is None else _ScatterRows.apply(x, idx, B, T)


# -- attention -------------------------------------------------------------------------------------
def _heads(x, pack, H: int):
    """Packed (N, D) -> (B, H, T, Dh)."""
    idx, B, T = pack
    return _pad(x, idx, B, T).view(B, T, H, -1).transpose(1, 2)


def _merge(y, pack):
    """(B, H, T, Dh) -> packed (N, D): the inverse of _heads."""
    idx, B, T = pack
    return _unpad(y.transpose(1, 2).reshape(B, T, -1), idx)


def _probs(q, k, bias):
    """softmax(q.k^T / sqrt(Dh) + bias), scaling q and k by Dh^-1/4 each as SDPA's math path does."""
    c = q.shape[-1] ** -0.25
    return torch.softmax((q * c) @ (k * c).transpose(-1, -2) + bias, dim=-1)  # (B, H, T, T)


class _Attention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, bias, p, pack, H):
        probs, mask = torch.native_dropout(_probs(_heads(q, pack, H), _heads(k, pack, H), bias), p, True)
        ctx.save_for_backward(q, k, v, bias, mask)  # q, k, v packed (N, D); mask (B, H, T, T) bool
        ctx.p, ctx.pack, ctx.H = p, pack, H
        return _merge(probs @ _heads(v, pack, H), pack)  # (B, H, T, Dh) -> (N, D)

    @staticmethod
    def backward(ctx, gy):
        q, k, v, bias, mask = ctx.saved_tensors
        pack, H = ctx.pack, ctx.H
        q, k, v, gy = (_heads(t, pack, H) for t in (q, k, v, gy))  # (B, H, T, Dh) each
        probs = _probs(q, k, bias)  # recomputed, (B, H, T, T)
        scale = 1.0 / (1.0 - ctx.p)
        gv = (probs * mask * scale).transpose(-1, -2) @ gy  # (B, H, T, Dh)
        gp = (gy @ v.transpose(-1, -2)) * mask * scale  # (B, H, T, T)
        gs = probs * (gp - (gp * probs).sum(-1, keepdim=True))  # softmax backward, (B, H, T, T)
        s = q.shape[-1] ** -0.5
        gq, gk = (gs @ k) * s, (gs.transpose(-1, -2) @ q) * s  # (B, H, T, Dh) each
        gbias = gs.sum_to_size(bias.shape) if ctx.needs_input_grad[3] else None  # MPNet's bias is learned
        return _merge(gq, pack), _merge(gk, pack), _merge(gv, pack), gbias, None, None, None


def attention(q, k, v, bias, p: float, pack, H: int) -> torch.Tensor:
    """Multi-head attention on packed rows: q, k, v (N, D) -> (N, D). bias (B|1, H|1, T|1, T) is added
    to q.k^T / sqrt(Dh) (padding mask, MPNet's relative positions); p: dropout on the probabilities."""
    bias = bias.to(q.dtype)
    if p > 0 and lean(q):
        return _Attention.apply(q, k, v, bias, p, pack, H)
    idx, B, T = pack
    q, k, v = (to_padded(t, idx, B, T).view(B, T, H, -1).transpose(1, 2) for t in (q, k, v))  # (B, H, T, Dh)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p)  # (B, H, T, Dh)
    return to_packed(y.transpose(1, 2).reshape(B, T, -1), idx)  # (N, D)


# -- linear layers in inference -------------------------------------------------------------------
# hidden_act -> oneDNN's fused post-op (attr, algorithm); others run as a separate op after the matmul
ONEDNN_ACTS = {"gelu": ("gelu", "none"), "gelu_new": ("gelu", "tanh"), "gelu_pytorch_tanh": ("gelu", "tanh"),
               "gelu_fast": ("gelu", "tanh"), "relu": ("relu", "")}


@functools.cache
def onednn_available() -> bool:
    """torch was built with oneDNN and has the (private, inductor's) fused linear ops."""
    names = ("_linear_pointwise", "_reorder_linear_weight")
    return torch.backends.mkldnn.is_available() and all(hasattr(torch.ops.mkldnn, n) for n in names)


def _onednn_weight(x, layer: nn.Module):
    """The weight for oneDNN's matmul (~6% faster here than F.linear's BLAS call), or None for F.linear:
    oneDNN inside `onednn_inference` (encode), on fp32 CPU rows with autograd off."""
    weight = getattr(layer, "onednn_weight", None)  # read once: another thread's encode may drop it
    if weight is None:  # outside encode (training, GradCache): return at once
        return None
    ok = x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 2 and not torch.is_grad_enabled()
    return weight if ok and not torch.is_autocast_enabled("cpu") else None


def linear(x, layer: nn.Linear, act: str | None = None):
    """layer(x) for packed rows x (N, C), then the activation named `act` if given (fused in encode)."""
    weight = _onednn_weight(x, layer)
    if weight is not None and (act is None or act in ONEDNN_ACTS):
        attr, algorithm = ONEDNN_ACTS.get(act, ("none", ""))
        return torch.ops.mkldnn._linear_pointwise(x, weight, layer.bias, attr, [], algorithm)  # (N, out)
    y = layer(x)
    return y if act is None else ACTIVATIONS[act](y)


@contextmanager
def onednn_inference(module: nn.Module, prepack: bool = False):
    """Inside: `linear` runs the fp32 CPU nn.Linear layers of `module` through oneDNN when autograd is off.
    prepack: hold each weight in oneDNN's blocked layout too (~5% faster again; packing costs ~2 ms per
    million weights, and the copies' memory while inside). Only encode enters this: a loss's no-grad
    forward (GradCache) must give bit for bit the embeddings of its forward with autograd (F.linear)."""
    layers = [m for m in module.modules() if isinstance(m, nn.Linear) and m.weight.device.type == "cpu"
              and m.weight.dtype == torch.float32] if onednn_available() else []
    for m in layers:
        w = m.weight.detach()
        m.onednn_weight = torch.ops.mkldnn._reorder_linear_weight(w, None) if prepack else w
    try:
        yield
    finally:
        for m in layers:
            vars(m).pop("onednn_weight", None)  # (another thread's encode may have dropped it already)


# -- MLP and dropout -------------------------------------------------------------------------------
class _ActLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, weight, bias, act):
        ctx.act = act
        ctx.save_for_backward(h, weight)
        return F.linear(act(h), weight, bias)

    @staticmethod
    def backward(ctx, gy):
        h, weight = ctx.saved_tensors
        with torch.enable_grad():
            h_ = h.detach().requires_grad_()
            a = ctx.act(h_)  # recomputed, (N, I)
        gh = torch.autograd.grad(a, h_, gy @ weight)[0]  # (N, I)
        gw = gy.t() @ a.detach() if ctx.needs_input_grad[1] else None  # (D, I)
        gb = gy.sum(0) if ctx.needs_input_grad[2] else None  # (D,)
        return gh, gw, gb, None


def mlp(x, fc1: nn.Linear, fc2: nn.Linear, act: str):
    """fc2(act(fc1(x))) for packed rows x (N, D): fused in encode; in fp32 CPU training fc2's
    input is not kept but recomputed from fc1's output in backward."""
    if _onednn_weight(x, fc1) is not None:
        return linear(linear(x, fc1, act), fc2)  # (N, I) -> (N, D)
    h = fc1(x)  # (N, I)
    if lean(h) and torch.is_grad_enabled() and h.dim() == 2 and fc2.bias is not None:
        return _ActLinear.apply(h, fc2.weight, fc2.bias, ACTIVATIONS[act])
    return fc2(ACTIVATIONS[act](h))


class Dropout(nn.Dropout):
    """nn.Dropout with the same random draws, keeping a bool mask instead of a float one."""

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        return torch.native_dropout(x, self.p, True)[0] if lean(x) else F.dropout(x, self.p, True)


@contextmanager
def sparse_embedding_grads(module: nn.Module, enabled: bool = True):
    """Inside: the nn.Embedding layers of `module` back-propagate sparse gradients (the rows of the
    batch's tokens only); on exit they become dense .grad tensors, so clipping and optimizers see the
    usual gradients. Saves a vocabulary-sized dense gradient per forward pass (a loss embeds each text
    column separately): 47 MB each for all-MiniLM-L6-v2, all alive until backward reaches the embeddings."""
    layers = [m for m in module.modules() if isinstance(m, nn.Embedding) and not m.sparse
              and m.weight.requires_grad] if enabled else []
    for m in layers:
        m.sparse = True
    try:
        yield
    finally:
        for m in layers:
            m.sparse = False
            if m.weight.grad is not None and m.weight.grad.is_sparse:
                m.weight.grad = m.weight.grad.to_dense()  # duplicate rows are summed


def return_freed_memory_to_os(threshold: int = 64 << 10) -> bool:
    """Make glibc serve every allocation >= threshold bytes from its own mapping, unmapped when freed.

    glibc raises its mmap threshold on the fly after big frees, so activations of varying size end up
    in its heap, which keeps them: training RSS then creeps up for dozens of steps. A fixed threshold
    stops that, at the price of fresh (zeroed) pages for every big tensor. Process-wide. False without glibc.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    M_MMAP_THRESHOLD = -3
    return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold))
