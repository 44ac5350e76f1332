"""Similarity functions and embedding quantization.

Mirrors `sentence_transformers/util.py` (the similarity part) and `quantization.py` v3.4:
- `cos_sim(a, b)`      (N, D) x (M, D) -> (N, M) cosine similarities
- `dot_score(a, b)`    (N, D) x (M, D) -> (N, M) dot products
- `euclidean_sim`, `manhattan_sim`: *negated* distances, so that larger is more similar
- `pairwise_*`         (N, D) x (N, D) -> (N,) the same, row by row
- `pairwise_angle_sim` the AnglE similarity (complex division of the two halves)
- `quantize_embeddings` float -> int8 / uint8 / binary / ubinary
Not included: semantic_search, paraphrase_mining helpers, community detection.
"""
import numpy as np
import torch
import torch.nn.functional as F


def _as_tensor(x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x))
    return x.unsqueeze(0) if x.dim() == 1 else x


def normalize_embeddings(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, p=2, dim=-1)


def cos_sim(a, b) -> torch.Tensor:
    a, b = _as_tensor(a), _as_tensor(b)
    return normalize_embeddings(a) @ normalize_embeddings(b).T  # (N, M)


def dot_score(a, b) -> torch.Tensor:
    a, b = _as_tensor(a), _as_tensor(b)
    return a @ b.T  # (N, M)


def euclidean_sim(a, b) -> torch.Tensor:
    a, b = _as_tensor(a), _as_tensor(b)
    return -torch.cdist(a, b, p=2.0)  # (N, M)


def manhattan_sim(a, b) -> torch.Tensor:
    a, b = _as_tensor(a), _as_tensor(b)
    return -torch.cdist(a, b, p=1.0)  # (N, M)


def pairwise_cos_sim(a, b) -> torch.Tensor:
    a, b = _as_tensor(a), _as_tensor(b)
    return (normalize_embeddings(a) * normalize_embeddings(b)).sum(-1)  # (N,)


def pairwise_dot_score(a, b) -> torch.Tensor:
    a, b = _as_tensor(a), _as_tensor(b)
    return (a * b).sum(-1)  # (N,)


def pairwise_euclidean_sim(a, b) -> torch.Tensor:
    a, b = _as_tensor(a), _as_tensor(b)
    return -((a - b) ** 2).sum(-1).sqrt()  # (N,)


def pairwise_manhattan_sim(a, b) -> torch.Tensor:
    a, b = _as_tensor(a), _as_tensor(b)
    return -(a - b).abs().sum(-1)  # (N,)


def pairwise_angle_sim(x, y) -> torch.Tensor:
    """AnglE: read each vector as complex numbers (first half real, second half imaginary),
    divide x by y, and score the absolute sum of the normalised quotient (N,)."""
    x, y = _as_tensor(x), _as_tensor(y)
    a, b = torch.chunk(x, 2, dim=1)  # (N, D/2) real and imaginary parts of x
    c, d = torch.chunk(y, 2, dim=1)  # (N, D/2) ... of y
    z = (c**2 + d**2).sum(dim=1, keepdim=True)  # (N, 1)
    re = (a * c + b * d) / z  # (N, D/2)
    im = (b * c - a * d) / z  # (N, D/2)
    # subtle: ST divides by the ratio of the norms of the halves-concatenated vectors
    dz = (a**2 + b**2).sum(dim=1, keepdim=True).sqrt()  # (N, 1)
    dw = (c**2 + d**2).sum(dim=1, keepdim=True).sqrt()  # (N, 1)
    re, im = re / (dz / dw), im / (dz / dw)
    return torch.cat((re, im), dim=1).sum(dim=1).abs()  # (N,)


SIMILARITY_FNS = {"cosine": cos_sim, "dot": dot_score, "euclidean": euclidean_sim, "manhattan": manhattan_sim}
PAIRWISE_FNS = {
    "cosine": pairwise_cos_sim,
    "dot": pairwise_dot_score,
    "euclidean": pairwise_euclidean_sim,
    "manhattan": pairwise_manhattan_sim,
}


def check_similarity_fn_name(name: str) -> str:
    name = getattr(name, "value", name)  # accept a SimilarityFunction enum member
    aliases = {"cos_sim": "cosine", "dot_score": "dot", "dot_product": "dot"}
    name = aliases.get(name, name)
    if name not in SIMILARITY_FNS:
        raise ValueError(f"unknown similarity function {name!r}; expected one of {sorted(SIMILARITY_FNS)}")
    return name


def quantize_embeddings(embeddings, precision: str, ranges=None, calibration_embeddings=None):
    """Quantize (N, D) float embeddings. int8/uint8 use per-dimension [min, max] ranges taken from
    `ranges` (2, D), else `calibration_embeddings`, else the embeddings themselves; binary/ubinary
    pack the sign bits (D/8 bytes per row, binary shifted by -128 into int8)."""
    if isinstance(embeddings, torch.Tensor):
        embeddings = embeddings.float().cpu().numpy()
    embeddings = np.asarray(embeddings)
    if precision == "float32":
        return embeddings.astype(np.float32)
    if precision in ("int8", "uint8"):
        if ranges is None:
            src = embeddings if calibration_embeddings is None else np.asarray(calibration_embeddings)
            ranges = np.vstack((src.min(axis=0), src.max(axis=0)))  # (2, D)
        starts, steps = ranges[0, :], (ranges[1, :] - ranges[0, :]) / 255
        q = (embeddings - starts) / steps
        return (q - 128).astype(np.int8) if precision == "int8" else q.astype(np.uint8)
    if precision == "binary":
        return (np.packbits(embeddings > 0).reshape(embeddings.shape[0], -1) - 128).astype(np.int8)
    if precision == "ubinary":
        return np.packbits(embeddings > 0).reshape(embeddings.shape[0], -1)
    raise ValueError(f"precision must be float32, int8, uint8, binary or ubinary, got {precision!r}")
