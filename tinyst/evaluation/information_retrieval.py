"""InformationRetrievalEvaluator: embed queries and a corpus, retrieve the top documents per query,
and score the ranking against known relevant documents (accuracy/precision/recall/MRR/NDCG/MAP@k).

Mirrors `sentence_transformers/evaluation/InformationRetrievalEvaluator.py` v3.4: keys
`{fn}_accuracy@k, _precision@k, _recall@k, _ndcg@k, _mrr@k, _map@k`, primary `{fn}_ndcg@{max k}`,
CSV `Information-Retrieval_evaluation[_{name}]_results.csv` ("\\n" line ends, `{fn}-Accuracy@k`
headers). Queries without relevant documents are skipped. The corpus is embedded and scored
`corpus_chunk_size` documents at a time, keeping only a running top-k per query, so memory is
bounded by the chunk, not the corpus. Tied scores rank in corpus order.
Not included: `write_predictions`, precomputed `corpus_embeddings`.
"""
import numpy as np
import torch

from tinyst.evaluation import metrics as M
from tinyst.evaluation.base import SentenceEvaluator, SimilarityFunction, csv_name, embed

METRIC_FNS = {  # metric -> (function, whether it takes n_relevant), in ST's key order
    "accuracy@k": (M.accuracy_at_k, False), "precision@k": (M.precision_at_k, False),
    "recall@k": (M.recall_at_k, True), "ndcg@k": (M.ndcg_at_k, True), "mrr@k": (M.mrr_at_k, False),
    "map@k": (M.map_at_k, True),
}


def _check_ks(name, ks) -> list[int]:
    ks = list(ks)
    if not ks or any(not isinstance(k, int) or isinstance(k, bool) or k < 1 for k in ks):
        raise ValueError(f"{name} must be a non-empty list of positive integers, got {ks}")
    return ks


class InformationRetrievalEvaluator(SentenceEvaluator):
    def __init__(self, queries: dict[str, str], corpus: dict[str, str], relevant_docs: dict[str, set[str]],
                 corpus_chunk_size: int = 50000, mrr_at_k: list[int] = [10], ndcg_at_k: list[int] = [10],
                 accuracy_at_k: list[int] = [1, 3, 5, 10], precision_recall_at_k: list[int] = [1, 3, 5, 10],
                 map_at_k: list[int] = [100], show_progress_bar: bool = False, batch_size: int = 32, name: str = "",
                 write_csv: bool = True, truncate_dim: int | None = None, score_functions: dict | None = None,
                 main_score_function: str | SimilarityFunction | None = None, query_prompt: str | None = None,
                 query_prompt_name: str | None = None, corpus_prompt: str | None = None,
                 corpus_prompt_name: str | None = None):
        super().__init__()
        for arg, value in (("queries", queries), ("corpus", corpus), ("relevant_docs", relevant_docs)):
            if not isinstance(value, dict):
                raise TypeError(f"{arg} must be a dict keyed by id, got {type(value).__name__}")
            if not value:
                raise ValueError(f"{arg} is empty")
        # queries without relevant documents are skipped; qrels of absent queries are ignored (as ST)
        self.queries_ids = [qid for qid in queries if len(relevant_docs.get(qid, ())) > 0]
        if not self.queries_ids:
            raise ValueError("no query in `queries` has a relevant document in `relevant_docs`")
        self.relevant_docs = {qid: set(relevant_docs[qid]) for qid in self.queries_ids}
        for qid, docs in self.relevant_docs.items():
            missing = docs - corpus.keys()
            if missing:
                raise ValueError(f"relevant_docs[{qid!r}] names ids missing from the corpus: {sorted(missing)[:5]}")
        if not isinstance(corpus_chunk_size, int) or corpus_chunk_size < 1:
            raise ValueError(f"corpus_chunk_size must be a positive integer, got {corpus_chunk_size!r}")
        self.queries = [queries[qid] for qid in self.queries_ids]
        self.corpus_ids = list(corpus)
        self.corpus = [corpus[cid] for cid in self.corpus_ids]
        self.mrr_at_k, self.ndcg_at_k = _check_ks("mrr_at_k", mrr_at_k), _check_ks("ndcg_at_k", ndcg_at_k)
        self.accuracy_at_k, self.map_at_k = _check_ks("accuracy_at_k", accuracy_at_k), _check_ks("map_at_k", map_at_k)
        self.precision_recall_at_k = _check_ks("precision_recall_at_k", precision_recall_at_k)
        self.ks = {"accuracy@k": self.accuracy_at_k, "precision@k": self.precision_recall_at_k,
                   "recall@k": self.precision_recall_at_k, "ndcg@k": self.ndcg_at_k, "mrr@k": self.mrr_at_k,
                   "map@k": self.map_at_k}
        self.corpus_chunk_size, self.batch_size = corpus_chunk_size, batch_size
        self.show_progress_bar = show_progress_bar
        self.name, self.write_csv, self.truncate_dim = name, write_csv, truncate_dim
        self.query_prompt, self.query_prompt_name = query_prompt, query_prompt_name
        self.corpus_prompt, self.corpus_prompt_name = corpus_prompt, corpus_prompt_name
        self.score_functions = score_functions
        self.score_function_names = sorted(score_functions) if score_functions else []
        self.main_score_function = SimilarityFunction(main_score_function) if main_score_function else None
        self.csv_file = csv_name("Information-Retrieval_evaluation", name)
        self.csv_headers = ["epoch", "steps"]
        self._append_csv_headers(self.score_function_names)

    def _columns(self, fn):
        """CSV columns of one score function as (metric, k, header), in ST's order."""
        cols = [("accuracy@k", k, f"{fn}-Accuracy@{k}") for k in self.accuracy_at_k]
        for k in self.precision_recall_at_k:
            cols += [("precision@k", k, f"{fn}-Precision@{k}"), ("recall@k", k, f"{fn}-Recall@{k}")]
        cols += [("mrr@k", k, f"{fn}-MRR@{k}") for k in self.mrr_at_k]
        cols += [("ndcg@k", k, f"{fn}-NDCG@{k}") for k in self.ndcg_at_k]
        return cols + [("map@k", k, f"{fn}-MAP@{k}") for k in self.map_at_k]

    def _append_csv_headers(self, names):
        self.csv_headers += [head for fn in names for _, _, head in self._columns(fn)]

    def _csv_row(self, scores) -> list:
        return [scores[fn][metric][k] for fn in self.score_function_names for metric, k, _ in self._columns(fn)]

    def _primary(self, ndcg_of) -> str:
        k = max(self.ndcg_at_k)
        main = getattr(self.main_score_function, "value", self.main_score_function)
        return f"{main or max(self.score_function_names, key=lambda fn: ndcg_of(fn, k))}_ndcg@{k}"

    def __call__(self, model, output_path=None, epoch=-1, steps=-1) -> dict[str, float]:
        if self.score_functions is None:
            self.score_functions = {model.similarity_fn_name: model.similarity}
            self.score_function_names = [model.similarity_fn_name]
            self._append_csv_headers(self.score_function_names)
        scores = self.compute_metrics(model)
        self.primary_metric = self.primary_metric or self._primary(lambda fn, k: scores[fn]["ndcg@k"][k])
        metrics = {f"{fn}_{metric.replace('@k', f'@{k}')}": value for fn, per_metric in scores.items()
                   for metric, per_k in per_metric.items() for k, value in per_k.items()}
        return self.finish(model, metrics, output_path, epoch, steps, self._csv_row(scores), "\n")

    def retrieve(self, model) -> dict[str, np.ndarray]:
        """{score function: (Q, K) corpus indices of each query's top K documents, best first},
        with K = min(largest k asked, corpus size)."""
        max_k = max(max(ks) for ks in self.ks.values())
        q_emb = embed(model, self.queries, self.truncate_dim, prompt_name=self.query_prompt_name,
                      prompt=self.query_prompt, batch_size=self.batch_size,
                      show_progress_bar=self.show_progress_bar, convert_to_tensor=True)  # (Q, D)
        best = {}  # fn -> running (scores (Q, K), corpus indices (Q, K))
        for start in range(0, len(self.corpus), self.corpus_chunk_size):
            c_emb = embed(model, self.corpus[start : start + self.corpus_chunk_size], self.truncate_dim,
                          prompt_name=self.corpus_prompt_name, prompt=self.corpus_prompt, batch_size=self.batch_size,
                          show_progress_bar=False, convert_to_tensor=True)  # (C, D)
            for fn, score_fn in self.score_functions.items():
                sims = score_fn(q_emb, c_emb.to(q_emb.device)).float().cpu()  # (Q, C)
                v, i = torch.topk(sims, min(max_k, sims.shape[1]), dim=1)  # (Q, K) best of this chunk
                i = i + start  # chunk position -> corpus index
                if fn in best:  # merge with the best of earlier chunks
                    v, i = torch.cat([best[fn][0], v], 1), torch.cat([best[fn][1], i], 1)  # (Q, 2K)
                    v, pick = torch.topk(v, min(max_k, v.shape[1]), dim=1)  # (Q, K)
                    i = torch.gather(i, 1, pick)
                best[fn] = (v, i)
            del c_emb, sims
        ranked = {}
        for fn, (v, i) in best.items():
            order = np.lexsort((i.numpy(), -v.numpy()), axis=1)  # (Q, K) score descending, ties by corpus order
            ranked[fn] = np.take_along_axis(i.numpy(), order, axis=1)
        return ranked

    def compute_metrics(self, model) -> dict[str, dict[str, dict[int, float]]]:
        """{fn: {metric: {k: value}}}, each averaged over queries."""
        n_relevant = np.array([len(self.relevant_docs[q]) for q in self.queries_ids])  # (Q,)
        out = {}
        for fn, ranked in self.retrieve(model).items():
            hits = np.array([[self.corpus_ids[c] in self.relevant_docs[q] for c in row]
                             for q, row in zip(self.queries_ids, ranked)], dtype=bool).reshape(ranked.shape)  # (Q, K)
            out[fn] = {metric: {k: (f(hits, n_relevant, k) if with_n else f(hits, k)) for k in self.ks[metric]}
                       for metric, (f, with_n) in METRIC_FNS.items()}
        return out
