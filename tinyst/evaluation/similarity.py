"""EmbeddingSimilarityEvaluator: Pearson and Spearman correlation between gold scores and the
model's similarity of each sentence pair (the STS benchmark metric).

Mirrors `sentence_transformers/evaluation/EmbeddingSimilarityEvaluator.py` v3.4: keys
`pearson_{fn}`, `spearman_{fn}` (+ `_max` with several functions), primary `spearman_{fn}`,
CSV `similarity_evaluation[_{name}][_{precision}]_results.csv`. With `precision`, embeddings are
normalized, then quantized by `model.encode`, and binary ones unpacked to 0/1 bits.
Not included: `from_input_examples`. Divergence: quantized scores are computed in float64, so "dot"
does not overflow as ST's `np.dot` on int8 arrays does.
"""
import numpy as np

from tinyst.evaluation import metrics as M
from tinyst.evaluation.base import SentenceEvaluator, SimilarityFunction, check_fn_names, check_texts, csv_name
from tinyst.evaluation.base import embed, pairwise_scores

PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")


class EmbeddingSimilarityEvaluator(SentenceEvaluator):
    def __init__(self, sentences1: list[str], sentences2: list[str], scores: list[float], batch_size: int = 16,
                 main_similarity: str | SimilarityFunction | None = None, similarity_fn_names: list[str] | None = None,
                 name: str = "", show_progress_bar: bool = False, write_csv: bool = True,
                 precision: str | None = None, truncate_dim: int | None = None):
        super().__init__()
        check_texts(sentences1=sentences1, sentences2=sentences2)
        M.check_same_length(sentences1=sentences1, scores=scores)
        if precision is not None and precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS} or None, got {precision!r}")
        self.sentences1, self.sentences2 = list(sentences1), list(sentences2)
        self.scores = M.as_vector("scores", scores)
        self.main_similarity = SimilarityFunction(main_similarity) if main_similarity else None
        self.similarity_fn_names = check_fn_names(similarity_fn_names)
        self.batch_size, self.name, self.show_progress_bar = batch_size, name, show_progress_bar
        self.write_csv, self.precision, self.truncate_dim = write_csv, precision, truncate_dim
        self.csv_file = csv_name("similarity_evaluation", name, (f"_{precision}" if precision else "") + "_results.csv")
        self.csv_headers = ["epoch", "steps"]
        self._append_csv_headers(self.similarity_fn_names)

    def _append_csv_headers(self, fn_names):
        self.csv_headers += [f"{fn}_{m}" for fn in fn_names for m in ("pearson", "spearman")]

    def _embed(self, model, texts) -> np.ndarray:
        emb = embed(model, texts, self.truncate_dim, batch_size=self.batch_size,
                    show_progress_bar=self.show_progress_bar, convert_to_numpy=True,
                    precision=self.precision or "float32", normalize_embeddings=bool(self.precision))  # (N, D|D/8)
        if self.precision == "binary":
            emb = (emb.astype(np.int16) + 128).astype(np.uint8)  # undo the -128 shift of signed packing
        return np.unpackbits(emb, axis=1) if self.precision in ("binary", "ubinary") else emb  # (N, D)

    def __call__(self, model, output_path=None, epoch=-1, steps=-1) -> dict[str, float]:
        emb1, emb2 = self._embed(model, self.sentences1), self._embed(model, self.sentences2)
        if not self.similarity_fn_names:
            self.similarity_fn_names = [model.similarity_fn_name]
            self._append_csv_headers(self.similarity_fn_names)
        fns, metrics = self.similarity_fn_names, {}
        for fn in fns:
            sims = pairwise_scores(fn, emb1, emb2)  # (N,)
            metrics[f"pearson_{fn}"] = M.pearson(self.scores, sims)
            metrics[f"spearman_{fn}"] = M.spearman(self.scores, sims)
        row = list(metrics.values())
        if len(fns) > 1:
            metrics["pearson_max"] = max(metrics[f"pearson_{fn}"] for fn in fns)
            metrics["spearman_max"] = max(metrics[f"spearman_{fn}"] for fn in fns)
        main = self.main_similarity.value if self.main_similarity else ("max" if len(fns) > 1 else fns[0])
        self.primary_metric = f"spearman_{main}"
        return self.finish(model, metrics, output_path, epoch, steps, row)

    @property
    def description(self) -> str:
        return "Semantic Similarity"
