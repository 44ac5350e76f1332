"""NanoBEIREvaluator: information retrieval on the NanoBEIR collection (13 small BEIR subsets:
50 queries and up to ~5k documents each), per dataset and aggregated (mean) over datasets.

Mirrors `sentence_transformers/evaluation/NanoBEIREvaluator.py` v3.4: datasets
`zeta-alpha-ai/Nano{Name}` with subsets corpus/queries/qrels (split "train"), read through
`tinyst.load_dataset` (its cache, a hub-layout folder, or a download) when the evaluator is built;
one InformationRetrievalEvaluator per dataset named `Nano{Name}[_{dim}]`; aggregate keys
`NanoBEIR_{aggregate_key}[_{dim}]_{fn}_{metric}`; CSV `NanoBEIR_evaluation_{aggregate_key}_results.csv`.
Not included: `write_predictions`. Divergence: documents with empty text are dropped (as in ST) and
so are qrels naming them (ST keeps those, counting unretrievable documents against recall).
"""
import warnings

import numpy as np

from tinyst.evaluation.base import SentenceEvaluator
from tinyst.evaluation.information_retrieval import InformationRetrievalEvaluator

DATASETS = {  # short name -> the hub id is "zeta-alpha-ai/Nano{value}"
    "climatefever": "ClimateFEVER", "dbpedia": "DBPedia", "fever": "FEVER", "fiqa2018": "FiQA2018",
    "hotpotqa": "HotpotQA", "msmarco": "MSMARCO", "nfcorpus": "NFCorpus", "nq": "NQ",
    "quoraretrieval": "QuoraRetrieval", "scidocs": "SCIDOCS", "arguana": "ArguAna", "scifact": "SciFact",
    "touche2020": "Touche2020",
}


class NanoBEIREvaluator(SentenceEvaluator):
    # the aggregate CSV has the per-dataset IR columns
    _columns, _append_csv_headers, _csv_row, _primary = (
        InformationRetrievalEvaluator._columns, InformationRetrievalEvaluator._append_csv_headers,
        InformationRetrievalEvaluator._csv_row, InformationRetrievalEvaluator._primary)

    def __init__(self, dataset_names: list[str] | None = None, mrr_at_k: list[int] = [10], ndcg_at_k: list[int] = [10],
                 accuracy_at_k: list[int] = [1, 3, 5, 10], precision_recall_at_k: list[int] = [1, 3, 5, 10],
                 map_at_k: list[int] = [100], show_progress_bar: bool = False, batch_size: int = 32,
                 write_csv: bool = True, truncate_dim: int | None = None, score_functions: dict | None = None,
                 main_score_function=None, aggregate_fn=np.mean, aggregate_key: str = "mean",
                 query_prompts: str | dict[str, str] | None = None, corpus_prompts: str | dict[str, str] | None = None):
        super().__init__()
        self.dataset_names = list(DATASETS) if dataset_names is None else list(dataset_names)
        if not self.dataset_names:
            raise ValueError("dataset_names cannot be empty; use None to evaluate on all datasets")
        unknown = [d for d in self.dataset_names if d.lower() not in DATASETS]
        if unknown:
            raise ValueError(f"Dataset(s) {unknown} not found in the NanoBEIR collection; valid: {list(DATASETS)}")
        self.query_prompts = self._per_dataset("query", query_prompts)
        self.corpus_prompts = self._per_dataset("corpus", corpus_prompts)
        self.aggregate_fn, self.aggregate_key, self.write_csv = aggregate_fn, aggregate_key, write_csv
        self.truncate_dim, self.show_progress_bar = truncate_dim, show_progress_bar
        self.main_score_function = main_score_function
        self.score_functions = score_functions
        self.score_function_names = sorted(score_functions) if score_functions else []
        self.name = f"NanoBEIR_{aggregate_key}" + (f"_{truncate_dim}" if truncate_dim else "")
        self.mrr_at_k, self.ndcg_at_k, self.accuracy_at_k = mrr_at_k, ndcg_at_k, accuracy_at_k
        self.precision_recall_at_k, self.map_at_k = precision_recall_at_k, map_at_k
        ir_kwargs = dict(mrr_at_k=mrr_at_k, ndcg_at_k=ndcg_at_k, accuracy_at_k=accuracy_at_k,
                         precision_recall_at_k=precision_recall_at_k, map_at_k=map_at_k,
                         show_progress_bar=show_progress_bar, batch_size=batch_size, write_csv=write_csv,
                         truncate_dim=truncate_dim, score_functions=score_functions,
                         main_score_function=main_score_function)
        self.evaluators = [self._load_dataset(d, **ir_kwargs) for d in self.dataset_names]
        self.csv_file = f"NanoBEIR_evaluation_{aggregate_key}_results.csv"
        self.csv_headers = ["epoch", "steps"]
        self._append_csv_headers(self.score_function_names)

    def _per_dataset(self, kind, prompts):
        """A prompt string applies to every dataset; a dict must name each dataset."""
        if isinstance(prompts, str):
            return dict.fromkeys(self.dataset_names, prompts)
        missing = [d for d in self.dataset_names if prompts is not None and d not in prompts]
        if missing:
            raise ValueError(f"The following datasets are missing {kind} prompts: {missing}")
        return prompts

    def _load_dataset(self, dataset_name: str, **ir_kwargs) -> InformationRetrievalEvaluator:
        from tinyst.datasets import load_dataset  # lazy: only this evaluator reads hub datasets

        hub_id = f"zeta-alpha-ai/Nano{DATASETS[dataset_name.lower()]}"
        corpus, queries, qrels = (load_dataset(hub_id, part, split="train") for part in ("corpus", "queries", "qrels"))
        corpus = {i: t for i, t in zip(corpus["_id"], corpus["text"]) if len(t) > 0}
        queries = {i: t for i, t in zip(queries["_id"], queries["text"]) if len(t) > 0}
        relevant, dropped = {}, 0
        for qid, cid in zip(qrels["query-id"], qrels["corpus-id"]):
            if cid in corpus:
                relevant.setdefault(qid, set()).add(cid)
            else:
                dropped += 1
        if dropped:
            warnings.warn(f"{hub_id}: ignored {dropped} qrels naming documents absent from (or empty in) the corpus")
        if self.query_prompts is not None:
            ir_kwargs["query_prompt"] = self.query_prompts.get(dataset_name)
        if self.corpus_prompts is not None:
            ir_kwargs["corpus_prompt"] = self.corpus_prompts.get(dataset_name)
        dim = f"_{self.truncate_dim}" if self.truncate_dim is not None else ""
        name = f"Nano{DATASETS[dataset_name.lower()]}{dim}"
        return InformationRetrievalEvaluator(queries, corpus, relevant, name=name, **ir_kwargs)

    def __call__(self, model, output_path=None, epoch=-1, steps=-1) -> dict[str, float]:
        if self.score_functions is None:
            self.score_functions = {model.similarity_fn_name: model.similarity}
            self.score_function_names = [model.similarity_fn_name]
            self._append_csv_headers(self.score_function_names)
        per_metric, per_dataset = {}, {}
        for evaluator in self.evaluators:
            for key, value in evaluator(model, output_path, epoch, steps).items():
                # "NanoX_cosine_ndcg@10", or "NanoX_64_cosine_ndcg@10" when truncated: the dim is dropped
                parts = key.split("_", 2 if self.truncate_dim else 1)
                per_dataset[f"{parts[0]}_{parts[-1]}"] = value
                per_metric.setdefault(parts[-1], []).append(value)
        agg = {metric: self.aggregate_fn(values) for metric, values in per_metric.items()}
        scores = {fn: {m: {k: agg[f"{fn}_{m.replace('@k', f'@{k}')}"] for k in ks}
                       for m, ks in self.evaluators[0].ks.items()} for fn in self.score_function_names}
        self.primary_metric = self.primary_metric or self._primary(lambda fn, k: agg[f"{fn}_ndcg@{k}"])
        per_dataset.update(self.finish(model, agg, output_path, epoch, steps, self._csv_row(scores), "\n"))
        return per_dataset
