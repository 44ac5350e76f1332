"""Every number the evaluators report, in plain numpy (no scipy, no scikit-learn).

Mirrors what sentence-transformers 3.4 gets from `scipy.stats.pearsonr/spearmanr`,
`sklearn.metrics.average_precision_score/matthews_corrcoef/ndcg_score`, the threshold sweeps of
`BinaryClassificationEvaluator` and the ranking metrics of `InformationRetrievalEvaluator`.
Ranking metrics take a (Q, K) boolean `hits` matrix (hits[q, r]: the document query q ranked at
position r is relevant) and `n_relevant` (Q,), the number of relevant documents of each query.
Not included: p-values, multi-class MCC, sample weights.
"""
import warnings

import numpy as np


def as_vector(name: str, x) -> np.ndarray:
    """`x` as a non-empty, finite, 1-D float64 array; anything else raises a ValueError naming `name`."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a list of numbers: {e}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values (first at index {int(np.argmin(np.isfinite(arr)))})")
    return arr


def as_binary(name: str, labels) -> np.ndarray:
    arr = as_vector(name, labels)
    bad = arr[(arr != 0) & (arr != 1)]
    if bad.size:
        raise ValueError(f"{name} must be 0 or 1, got {bad[0]:g}")
    return arr.astype(np.int64)


def check_same_length(**named) -> int:
    lengths = {name: len(v) for name, v in named.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"lengths differ: {', '.join(f'{k}={v}' for k, v in lengths.items())}")
    return next(iter(lengths.values()))


def _pair(x, y, names=("x", "y")):
    x, y = as_vector(names[0], x), as_vector(names[1], y)
    check_same_length(**{names[0]: x, names[1]: y})
    return x, y


# ---- correlation ----------------------------------------------------------------------------


def pearson(x, y) -> float:
    """Pearson correlation; NaN (with a warning) when an input is constant, like scipy."""
    x, y = _pair(x, y)
    xm, ym = x - x.mean(), y - y.mean()  # (N,)
    if x.size < 2 or not xm.any() or not ym.any():
        warnings.warn("an input is constant (or too short), so the correlation is NaN", RuntimeWarning, stacklevel=2)
        return float("nan")
    xm, ym = xm / np.abs(xm).max(), ym / np.abs(ym).max()  # rescale first (as scipy) against overflow
    return float(np.clip(xm @ ym / (np.linalg.norm(xm) * np.linalg.norm(ym)), -1.0, 1.0))


def rankdata(x) -> np.ndarray:
    """1-based ranks; tied values all get the mean of the ranks they span (scipy's 'average')."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    starts = np.r_[True, x[order][1:] != x[order][:-1]]  # (N,) first sorted position of each tie run
    first = np.flatnonzero(starts)
    last = np.r_[first[1:], x.size] - 1
    ranks = np.empty(x.size)
    ranks[order] = ((first + last) / 2 + 1)[np.cumsum(starts) - 1]  # mean of the run's 1-based positions
    return ranks


def spearman(x, y) -> float:
    """Spearman correlation = Pearson on average ranks (ties averaged)."""
    x, y = _pair(x, y)
    return pearson(rankdata(x), rankdata(y))


# ---- binary classification ------------------------------------------------------------------


def average_precision(labels, scores) -> float:
    """Step-wise area under the precision-recall curve: sum over distinct thresholds of
    (R_n - R_{n-1}) * P_n. Tied scores form one threshold (scikit-learn's definition)."""
    y, s = _pair(labels, scores, ("labels", "scores"))
    y = as_binary("labels", y)
    if y.sum() == 0:
        raise ValueError("average precision is undefined without any positive label")
    order = np.argsort(-s, kind="stable")
    y, s = y[order], s[order]
    ends = np.r_[np.flatnonzero(s[1:] != s[:-1]), s.size - 1]  # last index of each tie group
    tp = np.cumsum(y)[ends]  # true positives at each threshold
    return float(np.sum(np.diff(np.r_[0.0, tp / tp[-1]]) * tp / (ends + 1)))


def matthews_corrcoef(labels, predictions) -> float:
    """MCC of binary predictions; 0.0 when a confusion-matrix margin is empty (as scikit-learn)."""
    y, p = _pair(labels, predictions, ("labels", "predictions"))
    y, p = as_binary("labels", y), as_binary("predictions", p)
    tp, tn, fp, fn = (float(np.sum((y == a) & (p == b))) for a, b in ((1, 1), (0, 0), (0, 1), (1, 0)))
    denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return 0.0 if denom == 0 else float((tp * tn - fp * fn) / denom)


def _sweep(scores, labels, greater_is_better):
    s, y = _pair(scores, labels, ("scores", "labels"))
    order = np.argsort(-s if greater_is_better else s, kind="stable")  # ties keep input order, as ST's sorted()
    return s[order], as_binary("labels", y)[order]


def best_accuracy_threshold(scores, labels, greater_is_better: bool = True) -> tuple[float, float]:
    """Best accuracy of "the first i+1 rows (best scores first) are positive" over i = 0..N-2,
    and the midpoint threshold between rows i and i+1 (the first i reaching the maximum)."""
    s, y = _sweep(scores, labels, greater_is_better)
    if y.size < 2:
        return 0.0, -1.0
    acc = (np.cumsum(y)[:-1] + (y.size - y.sum()) - np.cumsum(1 - y)[:-1]) / y.size  # (N-1,)
    i = int(np.argmax(acc))
    return (float(acc[i]), float((s[i] + s[i + 1]) / 2)) if acc[i] > 0 else (0.0, -1.0)


def best_f1_threshold(scores, labels, greater_is_better: bool = True) -> tuple[float, float, float, float]:
    """Best (F1, precision, recall, midpoint threshold) over the same sweep."""
    s, y = _sweep(scores, labels, greater_is_better)
    if y.size < 2 or y.sum() == 0:
        return 0.0, 0.0, 0.0, 0.0
    correct = np.cumsum(y)[:-1]  # (N-1,)
    p, r = correct / np.arange(1, y.size), correct / y.sum()
    with np.errstate(invalid="ignore"):
        f1 = np.where(correct > 0, 2 * p * r / (p + r), 0.0)  # subtle: ST's operation order, so ties match bitwise
    i = int(np.argmax(f1))
    return (float(f1[i]), float(p[i]), float(r[i]), float((s[i] + s[i + 1]) / 2)) if f1[i] > 0 else (0.0,) * 4


# ---- ranking ----------------------------------------------------------------------------------


def _discounts(n: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(n) + 2.0)  # (n,) rank r (0-based) is worth 1/log2(r+2)


def ndcg_score(relevance, scores, k: int | None = None) -> float:
    """Graded NDCG@k of one ranking with ties in `scores` averaged (scikit-learn's `ndcg_score`):
    tied documents share the mean gain over the positions they occupy."""
    g, s = _pair(relevance, scores, ("relevance", "scores"))
    if g.size < 2:
        raise ValueError("NDCG needs at least 2 documents")
    disc = _discounts(g.size)
    if k is not None:
        disc[k:] = 0.0
    order = np.argsort(-s, kind="stable")
    group = np.cumsum(np.r_[True, s[order][1:] != s[order][:-1]]) - 1  # (N,) tie group of each position
    mean_gain = np.bincount(group, weights=g[order]) / np.bincount(group)
    ideal = float(np.sum(np.sort(g)[::-1] * disc))
    return 0.0 if ideal == 0 else float(np.sum(mean_gain[group] * disc)) / ideal


def _hits(hits, n_relevant=None):
    hits = np.asarray(hits, dtype=bool)
    if hits.ndim != 2 or hits.shape[0] == 0:
        raise ValueError(f"hits must be a non-empty (queries, ranks) matrix, got shape {hits.shape}")
    if n_relevant is None:
        return hits, None
    n = as_vector("n_relevant", n_relevant)
    check_same_length(hits=hits, n_relevant=n)
    if (n < 1).any():
        raise ValueError("every query needs at least one relevant document")
    return hits, n


def accuracy_at_k(hits, k: int) -> float:
    """Share of queries with a relevant document in the top k."""
    return float(_hits(hits)[0][:, :k].any(axis=1).mean())


def precision_at_k(hits, k: int) -> float:
    """Mean of (relevant in top k) / k; a shorter result list still divides by k."""
    return float((_hits(hits)[0][:, :k].sum(axis=1) / k).mean())


def recall_at_k(hits, n_relevant, k: int) -> float:
    """Mean of (relevant in top k) / (number of relevant documents)."""
    hits, n = _hits(hits, n_relevant)
    return float((hits[:, :k].sum(axis=1) / n).mean())


def mrr_at_k(hits, k: int) -> float:
    """Mean reciprocal rank of the first relevant document in the top k (0 when none)."""
    top = _hits(hits)[0][:, :k]
    return float(np.where(top.any(axis=1), 1.0 / (np.argmax(top, axis=1) + 1), 0.0).mean())


def ndcg_at_k(hits, n_relevant, k: int) -> float:
    """Binary-gain NDCG@k: DCG of the hits over the DCG of min(n_relevant, k) leading hits."""
    hits, n = _hits(hits, n_relevant)
    top = hits[:, :k]
    ideal = np.cumsum(_discounts(k))[np.minimum(n, k).astype(int) - 1]  # (Q,)
    return float(((top * _discounts(top.shape[1])).sum(axis=1) / ideal).mean())


def map_at_k(hits, n_relevant, k: int) -> float:
    """Mean over queries of sum_{hit ranks r <= k} (hits so far / r) / min(k, n_relevant)."""
    hits, n = _hits(hits, n_relevant)
    top = hits[:, :k]
    prec = np.cumsum(top, axis=1) / np.arange(1, top.shape[1] + 1)  # (Q, k) precision at each rank
    return float(((prec * top).sum(axis=1) / np.minimum(k, n)).mean())
