"""TripletEvaluator: share of (anchor, positive, negative) triplets where the anchor is more
similar to the positive than to the negative: mean(sim(a, p) > sim(a, n) + margin).

Mirrors `sentence_transformers/evaluation/TripletEvaluator.py` v3.4: keys `{fn}_accuracy`
(+ `max_accuracy` with several functions), primary `{fn}_accuracy`, CSV
`triplet_evaluation[_{name}]_results.csv` with columns `accuracy_{fn}`; `margin` is a number or a
per-function dict (default 0). Not included: `from_input_examples`, deprecated `main_distance_function`.
"""
import numbers

from tinyst.evaluation.base import SentenceEvaluator, SimilarityFunction, check_fn_names, check_texts, csv_name
from tinyst.evaluation.base import embed, pairwise_scores

FNS = ("cosine", "dot", "manhattan", "euclidean")


class TripletEvaluator(SentenceEvaluator):
    def __init__(self, anchors: list[str], positives: list[str], negatives: list[str],
                 main_similarity_function: str | SimilarityFunction | None = None,
                 margin: float | dict[str, float] | None = None, name: str = "", batch_size: int = 16,
                 show_progress_bar: bool = False, write_csv: bool = True, truncate_dim: int | None = None,
                 similarity_fn_names: list[str] | None = None):
        super().__init__()
        check_texts(anchors=anchors, positives=positives, negatives=negatives)
        self.anchors, self.positives, self.negatives = list(anchors), list(positives), list(negatives)
        main = main_similarity_function
        self.main_similarity_function = SimilarityFunction(main) if main else None
        self.similarity_fn_names = check_fn_names(similarity_fn_names)
        margin = 0 if margin is None else margin
        if isinstance(margin, numbers.Real):
            self.margin = dict.fromkeys(FNS, margin)
        elif isinstance(margin, dict) and set(margin) <= set(FNS):
            self.margin = {**dict.fromkeys(FNS, 0), **margin}
        else:
            raise ValueError(f"margin must be a number or a dict with keys from {FNS}, got {margin!r}")
        self.name, self.batch_size, self.show_progress_bar = name, batch_size, show_progress_bar
        self.write_csv, self.truncate_dim = write_csv, truncate_dim
        self.csv_file = csv_name("triplet_evaluation", name)
        self.csv_headers = ["epoch", "steps"]
        self._append_csv_headers(self.similarity_fn_names)

    def _append_csv_headers(self, fn_names):
        self.csv_headers += [f"accuracy_{fn}" for fn in fn_names]

    def __call__(self, model, output_path=None, epoch=-1, steps=-1) -> dict[str, float]:
        kw = dict(batch_size=self.batch_size, show_progress_bar=self.show_progress_bar, convert_to_numpy=True)
        a, p, n = (embed(model, t, self.truncate_dim, **kw) for t in (self.anchors, self.positives, self.negatives))
        if not self.similarity_fn_names:
            self.similarity_fn_names = [model.similarity_fn_name]
            self._append_csv_headers(self.similarity_fn_names)
        fns, metrics = self.similarity_fn_names, {}
        for fn in fns:
            pos, neg = pairwise_scores(fn, a, p), pairwise_scores(fn, a, n)  # (N,), (N,)
            metrics[f"{fn}_accuracy"] = float((pos > neg + self.margin[fn]).mean())
        row = list(metrics.values())
        if len(fns) > 1:
            metrics["max_accuracy"] = max(row)
        main = self.main_similarity_function.value if self.main_similarity_function else None
        self.primary_metric = f"{main or ('max' if len(fns) > 1 else fns[0])}_accuracy"
        return self.finish(model, metrics, output_path, epoch, steps, row)
