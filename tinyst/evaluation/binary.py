"""BinaryClassificationEvaluator: how well a similarity threshold separates duplicate (1) from
non-duplicate (0) pairs: best accuracy, best F1 (with precision/recall), average precision, MCC.

Mirrors `sentence_transformers/evaluation/BinaryClassificationEvaluator.py` v3.4: keys
`{fn}_accuracy, _accuracy_threshold, _f1, _f1_threshold, _precision, _recall, _ap, _mcc` (+ `max_*`
with several functions), primary `{fn}_ap` / `max_ap`, CSV
`binary_classification_evaluation[_{name}]_results.csv`. Each distinct text is embedded once.
Not included: `from_input_examples`. Divergence: euclidean/manhattan scores are negated distances
ranked as similarities (larger = closer); ST 3.4 ranks those negated distances as if smaller were
better, which inverts its euclidean/manhattan numbers. Cosine and dot match ST.
"""
from tinyst.evaluation import metrics as M
from tinyst.evaluation.base import SentenceEvaluator, check_fn_names, check_texts, csv_name, embed, pairwise_scores

METRICS = ("accuracy", "accuracy_threshold", "f1", "precision", "recall", "f1_threshold", "ap", "mcc")


class BinaryClassificationEvaluator(SentenceEvaluator):
    def __init__(self, sentences1: list[str], sentences2: list[str], labels: list[int], name: str = "",
                 batch_size: int = 32, show_progress_bar: bool = False, write_csv: bool = True,
                 truncate_dim: int | None = None, similarity_fn_names: list[str] | None = None):
        super().__init__()
        check_texts(sentences1=sentences1, sentences2=sentences2)
        M.check_same_length(sentences1=sentences1, labels=labels)
        self.sentences1, self.sentences2 = list(sentences1), list(sentences2)
        self.labels = M.as_binary("labels", labels)
        self.similarity_fn_names = check_fn_names(similarity_fn_names)
        self.name, self.batch_size, self.show_progress_bar = name, batch_size, show_progress_bar
        self.write_csv, self.truncate_dim = write_csv, truncate_dim
        self.csv_file = csv_name("binary_classification_evaluation", name)
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
        emb1, emb2 = emb[[row[t] for t in self.sentences1]], emb[[row[t] for t in self.sentences2]]  # (N, D) each
        out, y = {}, self.labels
        for fn in self.similarity_fn_names:
            scores = pairwise_scores(fn, emb1, emb2)  # (N,) larger = more similar for every fn
            acc, acc_threshold = M.best_accuracy_threshold(scores, y)
            f1, precision, recall, f1_threshold = M.best_f1_threshold(scores, y)
            out[fn] = dict(accuracy=acc, accuracy_threshold=acc_threshold, f1=f1, f1_threshold=f1_threshold,
                           precision=precision, recall=recall, ap=M.average_precision(y, scores),
                           mcc=M.matthews_corrcoef(y, scores >= f1_threshold))
        return out

    def __call__(self, model, output_path=None, epoch=-1, steps=-1) -> dict[str, float]:
        if not self.similarity_fn_names:
            self.similarity_fn_names = [model.similarity_fn_name]
            self._append_csv_headers(self.similarity_fn_names)
        fns, scores = self.similarity_fn_names, self.compute_metrics(model)
        metrics = {f"{fn}_{m}": v for fn in fns for m, v in scores[fn].items()}
        if len(fns) > 1:
            metrics.update({f"max_{m}": max(scores[fn][m] for fn in fns) for m in scores[fns[0]]})
        self.primary_metric = "max_ap" if len(fns) > 1 else f"{fns[0]}_ap"
        return self.finish(model, metrics, output_path, epoch, steps, [scores[fn][m] for fn in fns for m in METRICS])
