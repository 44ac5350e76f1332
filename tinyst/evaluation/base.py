"""What every evaluator shares: the base class, the similarity-function enum, CSV logging, and
the evaluator that runs others in sequence.

Mirrors `sentence_transformers/evaluation/{SentenceEvaluator,SequentialEvaluator}.py` and
`similarity_functions.py` (v3.4): `evaluator(model, output_path=None, epoch=-1, steps=-1) -> dict`,
`primary_metric`, `greater_is_better`, keys prefixed `f"{name}_{key}"`, one CSV row per call.
Not included: logging of results (tinyst does not print), model-card rendering.
"""
import csv
import io
import os
from enum import Enum

import numpy as np

from tinyst import util


class SimilarityFunction(Enum):
    """The four similarity functions; euclidean/manhattan are negated distances (larger = closer)."""

    COSINE = "cosine"
    DOT_PRODUCT = "dot"
    DOT = "dot"  # alias of DOT_PRODUCT
    EUCLIDEAN = "euclidean"
    MANHATTAN = "manhattan"

    @classmethod
    def _missing_(cls, value):
        return cls.DOT_PRODUCT if value == "dot_product" else None

    @staticmethod
    def possible_values() -> list[str]:
        return [m.value for m in SimilarityFunction]

    @staticmethod
    def to_similarity_fn(fn):  # (N, D) x (M, D) -> (N, M)
        return util.SIMILARITY_FNS[util.check_similarity_fn_name(fn)]

    @staticmethod
    def to_similarity_pairwise_fn(fn):  # (N, D) x (N, D) -> (N,)
        return util.PAIRWISE_FNS[util.check_similarity_fn_name(fn)]


def check_fn_names(names) -> list[str]:
    """Validate a `similarity_fn_names` list; None or [] means "use the model's" (resolved later)."""
    if names is None:
        return []
    if isinstance(names, str):
        raise TypeError(f"similarity_fn_names must be a list of names, got the string {names!r}")
    return [util.check_similarity_fn_name(n) for n in names]


def pairwise_scores(fn_name: str, a, b) -> np.ndarray:
    """Row-by-row similarity of two (N, D) embedding arrays -> (N,); larger = closer. Computed
    like ST's scikit-learn calls: float32 stays float32, anything else (quantized) becomes float64,
    and cosine is 1 - |a/|a| - b/|b||^2 / 2. subtle: the same operations in the same dtype make
    near-equal scores tie (or not) exactly as in ST, which matters for ranks and threshold sweeps."""
    dtype = np.float32 if np.asarray(a).dtype == np.float32 and np.asarray(b).dtype == np.float32 else np.float64
    a, b = np.asarray(a, dtype=dtype), np.asarray(b, dtype=dtype)
    sq = lambda x: np.einsum("ij,ij->i", x, x)  # noqa: E731  (N,) squared row norms
    if fn_name == "cosine":
        unit = lambda x: x / np.where(sq(x) == 0, 1, np.sqrt(sq(x)))[:, None]  # noqa: E731
        return 1 - 0.5 * sq(unit(a) - unit(b))
    if fn_name == "dot":
        return (a * b).sum(axis=1)
    if fn_name == "euclidean":
        return -np.sqrt(sq(a - b))
    return -np.abs(a - b).sum(axis=1)  # manhattan


def check_texts(**named) -> int:
    """Raise unless every named argument is a non-empty list of texts, all of one length."""
    for name, texts in named.items():
        if isinstance(texts, str) or not hasattr(texts, "__len__"):
            raise TypeError(f"{name} must be a list of texts, got {type(texts).__name__}")
        if len(texts) == 0:
            raise ValueError(f"{name} is empty")
    lengths = {name: len(t) for name, t in named.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"lengths differ: {', '.join(f'{k}={v}' for k, v in lengths.items())}")
    return next(iter(lengths.values()))


def embed(model, texts, truncate_dim=None, **encode_kwargs):
    """model.encode(list(texts), **encode_kwargs), with `model.truncate_dim` set to `truncate_dim`
    for the call when given (what ST's `truncate_sentence_embeddings` context manager does)."""
    old = getattr(model, "truncate_dim", None)
    if truncate_dim is not None:
        model.truncate_dim = truncate_dim
    try:
        return model.encode(list(texts), **encode_kwargs)
    finally:
        if truncate_dim is not None:
            model.truncate_dim = old


def csv_name(stem: str, name: str, suffix: str = "_results.csv") -> str:
    return stem + (f"_{name}" if name else "") + suffix


def append_csv(output_path: str, csv_file: str, header: list, row: list, newline: str = "\r\n") -> None:
    """Append `row` to output_path/csv_file, writing `header` first when the file is new. ST writes
    most CSVs with csv.writer (CRLF line ends) and IR ones by joining with "," and "\n": `newline`
    keeps each byte-compatible. The file is rebuilt under a temp name and swapped in with os.replace,
    so a crash never leaves a half-written row."""
    os.makedirs(output_path, exist_ok=True)
    path = os.path.join(output_path, csv_file)
    old = open(path, newline="", encoding="utf-8").read() if os.path.isfile(path) else ""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=newline)
    if not old:
        writer.writerow(header)
    writer.writerow([float(v) if isinstance(v, np.floating) else v for v in row])
    with open(path + ".tmp", "w", newline="", encoding="utf-8") as f:
        f.write(old + buf.getvalue())
    os.replace(path + ".tmp", path)


class SentenceEvaluator:
    """Base class: subclasses implement `__call__(model, output_path=None, epoch=-1, steps=-1)`
    returning a dict of floats whose `primary_metric` key picks the model-selection number."""

    def __init__(self):
        self.greater_is_better = True
        self.primary_metric = None

    def __call__(self, model, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict[str, float]:
        raise NotImplementedError

    def prefix_name_to_metrics(self, metrics: dict, name: str) -> dict[str, float]:
        """Prefix keys (and the primary metric) with `name_`; values become plain floats."""
        if not name:
            return metrics
        metrics = {f"{name}_{k}": float(v) for k, v in metrics.items()}
        if self.primary_metric is not None and not self.primary_metric.startswith(name + "_"):
            self.primary_metric = f"{name}_{self.primary_metric}"
        return metrics

    def finish(self, model, metrics: dict, output_path, epoch, steps, csv_row=None, newline="\r\n") -> dict:
        """The common tail of __call__: append `csv_row` (after epoch, steps) to the CSV when
        output_path is set and write_csv is on, prefix the keys with self.name, store in the card."""
        if output_path is not None and self.write_csv and csv_row is not None:
            append_csv(output_path, self.csv_file, self.csv_headers, [epoch, steps, *csv_row], newline)
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def store_metrics_in_model_card_data(self, model, metrics: dict, epoch: int = 0, step: int = 0) -> None:
        card = getattr(model, "model_card_data", None)
        if card is not None and hasattr(card, "set_evaluation_metrics"):
            card.set_evaluation_metrics(self, metrics, epoch, step)

    @property
    def description(self) -> str:
        """Class name without "Evaluator", split at capitals: "Binary Classification"."""
        name = type(self).__name__.split("Evaluator")[0]
        return "".join(" " + c if c.isupper() and i and name[i - 1].islower() else c for i, c in enumerate(name))


class SequentialEvaluator(SentenceEvaluator):
    """Run several evaluators with the same arguments; the union of their metrics plus
    `sequential_score` = main_score_function([each evaluator's primary value]) (default: the last)."""

    def __init__(self, evaluators, main_score_function=lambda scores: scores[-1]):
        super().__init__()
        self.evaluators = list(evaluators)
        if not self.evaluators:
            raise ValueError("SequentialEvaluator needs at least one evaluator")
        self.main_score_function = main_score_function

    def __call__(self, model, output_path=None, epoch=-1, steps=-1) -> dict[str, float]:
        results, scores = {}, []
        for i, evaluator in enumerate(self.evaluators):
            out = evaluator(model, output_path, epoch, steps)
            if not isinstance(out, dict):
                scores.append(out)
                out = {f"evaluator_{i}": out}
            else:
                key = getattr(evaluator, "primary_metric", None) or next(iter(out))
                scores.append(out[key])
            results.update(out)
        self.primary_metric = "sequential_score"
        results["sequential_score"] = self.main_score_function(scores)
        return results
