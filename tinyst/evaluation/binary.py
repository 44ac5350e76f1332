"""BinaryClassificationEvaluator: how well a similarity threshold separates duplicate (1) from
non-duplicate (0) pairs: best accuracy, best F1 (with precision/recall), average precision, MCC.

Mirrors `sentence_transformers/evaluation/BinaryClassificationEvaluator.py` v3.4: keys
`{fn}_accuracy, {fn}_accuracy_threshold, {fn}_f1, {fn}_f1_threshold, {fn}_precision, {fn}_recall,
{fn}_ap, {fn}_mcc` (+ `max_*` with several functions), primary `{fn}_ap` / `max_ap`, CSV
`binary_classification_evaluation[_{name}]_results.csv`. Each distinct text is embedded once.
Not included: `from_input_examples`. Divergence: euclidean/manhattan scores are negated
distances ranked as similarities (larger = more similar); ST 3.4 ranks those negated distances as
if smaller were better, which inverts its euclidean/manhattan numbers. Cosine and dot match ST.
"""
import numpy as np

from tinyst.evaluation import metrics as M
from tinyst.evaluation.base import SentenceEvaluator, append_csv, check_fn_names, check_texts, embed, pairwise_scores

METRICS = ("accuracy", "accuracy_threshold", "f1", "precision", "recall", "f1_threshold", "ap", "mcc")


class BinaryClassificationEvaluator(SentenceEvaluator):
    def __init__(
        self,
        sentences1: list[str],
        sentences2: list[str],
        labels: list[int],
        name: str = "",
        batch_size: int = 32,
        show_progress_bar: bool = False,
        write_csv: bool = True,
        truncate_dim: int | None = None,
        similarity_fn_names: list[str] | None = None,
    ):
        super().__init__()
        check_texts(sentences1=sentences1, sentences2=sentences2)
        M.check_same_length(sentences1=sentences1, labels=labels)
        self.labels = M.as_binary("labels", labels)
        self.sentences1, self.sentences2 = list(sentences1), list(sentences2)
        self.similarity_fn_names = check_fn_names(similarity_fn_names)
        self.name, self.batch_size, self.show_progress_bar = name, batch_size, show_progress_bar
        self.write_csv, self.truncate_dim = write_csv, truncate_dim
        self.csv_file = "binary_classification_evaluation" + (f"_{name}" if name else "") + "_results.csv"
        self.csv_headers = ["epoch", "steps"]
        self._append_csv_headers(self.similarity_fn_names)

    def _append_csv_headers(self, fn_names):
        self.csv_headers += [f"{fn}_{m}" for fn in fn_names for m in METRICS]

    def compute_metrics(self, model) -> dict[str, dict[str, float]]:
        """{fn: {metric: value}} for every similarity function."""
        unique = list(dict.fromkeys(self.sentences1 + self.sentences2))  # each text embedded once
        emb = embed(model, unique, self.truncate_dim, batch_size=self.batch_size,
                    show_progress_bar=self.show_progress_bar, convert_to_numpy=True)  # (U, D)
        row = {text: i for i, text in enumerate(unique)}
        emb1 = emb[[row[t] for t in self.sentences1]]  # (N, D)
        emb2 = emb[[row[t] for t in self.sentences2]]  # (N, D)
        out = {}
        for fn in self.similarity_fn_names:
            scores = pairwise_scores(fn, emb1, emb2)  # (N,) larger = more similar for every fn
            acc, acc_threshold = M.best_accuracy_threshold(scores, self.labels)
            f1, precision, recall, f1_threshold = M.best_f1_threshold(scores, self.labels)
            mcc = M.matthews_corrcoef(self.labels, scores >= f1_threshold)
            out[fn] = dict(accuracy=acc, accuracy_threshold=acc_threshold, f1=f1, f1_threshold=f1_threshold,
                           precision=precision, recall=recall, ap=M.average_precision(self.labels, scores), mcc=mcc)
        return out

    def __call__(self, model, output_path=None, epoch=-1, steps=-1) -> dict[str, float]:
        if not self.similarity_fn_names:
            self.similarity_fn_names = [model.similarity_fn_name]
            self._append_csv_headers(self.similarity_fn_names)
        scores = self.compute_metrics(model)
        if output_path is not None and self.write_csv:
            row = [scores[fn][m] for fn in self.similarity_fn_names for m in METRICS]
            append_csv(output_path, self.csv_file, self.csv_headers, [epoch, steps] + row)
        metrics = {f"{fn}_{m}": v for fn, values in scores.items() for m, v in values.items()}
        if len(self.similarity_fn_names) > 1:
            first = next(iter(scores.values()))
            metrics.update({f"max_{m}": max(scores[fn][m] for fn in scores) for m in first})
            self.primary_metric = "max_ap"
        else:
            self.primary_metric = f"{self.similarity_fn_names[0]}_ap"
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics
