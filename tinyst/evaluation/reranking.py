"""RerankingEvaluator: for each query, rank its own candidate documents (known positives and
negatives) by similarity and report MAP, MRR@k and NDCG@k averaged over queries.

Mirrors `sentence_transformers/evaluation/RerankingEvaluator.py` v3.4: samples are dicts
`{"query": str, "positive": [str], "negative": [str]}` (a dict of samples is accepted too);
samples with no positive or no negative are dropped; keys `map`, `mrr@{k}`, `ndcg@{k}`, primary
`map` (ST 3.4; later versions switch to ndcg); AP and NDCG follow scikit-learn (tied scores
averaged); CSV `RerankingEvaluator[_{name}]_results_@{k}.csv`.
Not included: the deprecated `mrr_at_k` argument.
"""
import numpy as np

from tinyst import util
from tinyst.evaluation import metrics as M
from tinyst.evaluation.base import SentenceEvaluator, csv_name, embed


class RerankingEvaluator(SentenceEvaluator):
    def __init__(self, samples, at_k: int = 10, name: str = "", write_csv: bool = True, similarity_fct=util.cos_sim,
                 batch_size: int = 64, show_progress_bar: bool = False, use_batched_encoding: bool = True,
                 truncate_dim: int | None = None):
        super().__init__()
        samples = list(samples.values()) if isinstance(samples, dict) else list(samples)
        for i, s in enumerate(samples):
            if not isinstance(s, dict) or not {"query", "positive", "negative"} <= set(s):
                raise ValueError(f"sample {i} must be a dict with keys 'query', 'positive', 'negative'")
            if isinstance(s["positive"], str) or isinstance(s["negative"], str):
                raise TypeError(f"sample {i}: 'positive' and 'negative' must be lists of texts, not strings")
        self.samples = [s for s in samples if len(s["positive"]) > 0 and len(s["negative"]) > 0]
        if not self.samples:
            raise ValueError("no sample has both a positive and a negative document")
        if not isinstance(at_k, int) or at_k < 1:
            raise ValueError(f"at_k must be a positive integer, got {at_k!r}")
        self.at_k, self.name, self.write_csv, self.similarity_fct = at_k, name, write_csv, similarity_fct
        self.batch_size, self.show_progress_bar = batch_size, show_progress_bar
        self.use_batched_encoding, self.truncate_dim = use_batched_encoding, truncate_dim
        self.csv_file = csv_name("RerankingEvaluator", name, f"_results_@{at_k}.csv")
        self.csv_headers = ["epoch", "steps", "MAP", f"MRR@{at_k}", f"NDCG@{at_k}"]
        self.primary_metric = "map"

    def _embed(self, model, texts):
        return embed(model, texts, self.truncate_dim, batch_size=self.batch_size,
                     show_progress_bar=self.show_progress_bar, convert_to_tensor=True)

    def _embedded_samples(self, model):
        """Yield (query (D,), documents (P+N, D)) per sample, positives first."""
        docs_of = [list(s["positive"]) + list(s["negative"]) for s in self.samples]
        if not self.use_batched_encoding:  # one encode call per sample
            for s, docs in zip(self.samples, docs_of):
                yield self._embed(model, [s["query"]])[0], self._embed(model, docs)
            return
        queries = self._embed(model, [s["query"] for s in self.samples])  # (S, D)
        all_docs = self._embed(model, [d for docs in docs_of for d in docs])  # (sum of P+N, D)
        ends = np.cumsum([len(docs) for docs in docs_of])
        for q, start, end in zip(queries, np.r_[0, ends[:-1]], ends):
            yield q, all_docs[start:end]

    def compute_metrics(self, model) -> dict[str, float]:
        aps, mrrs, ndcgs = [], [], []
        for (q, docs), s in zip(self._embedded_samples(model), self.samples):
            pred = self.similarity_fct(q, docs)  # (1, P+N)
            pred = (pred[0] if pred.dim() > 1 else pred).float().cpu().numpy()
            relevant = np.r_[np.ones(len(s["positive"])), np.zeros(len(s["negative"]))]
            mrrs.append(M.mrr_at_k(relevant[np.argsort(-pred, kind="stable")][None, :], self.at_k))
            ndcgs.append(M.ndcg_score(relevant, pred, k=self.at_k))
            aps.append(M.average_precision(relevant, pred))
        return {"map": float(np.mean(aps)), "mrr": float(np.mean(mrrs)), "ndcg": float(np.mean(ndcgs))}

    def __call__(self, model, output_path=None, epoch=-1, steps=-1) -> dict[str, float]:
        s = self.compute_metrics(model)
        metrics = {"map": s["map"], f"mrr@{self.at_k}": s["mrr"], f"ndcg@{self.at_k}": s["ndcg"]}
        return self.finish(model, metrics, output_path, epoch, steps, [s["map"], s["mrr"], s["ndcg"]])
