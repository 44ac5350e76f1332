"""ParaphraseMiningEvaluator: mine the most similar sentence pairs of a collection and score the
mined list against known duplicate pairs (average precision, best F1 and its threshold).

Mirrors `sentence_transformers/evaluation/ParaphraseMiningEvaluator.py` and
`util.paraphrase_mining_embeddings` v3.4: cosine top_k neighbours per sentence, computed in
query x corpus chunks; at most max_pairs - 1 candidate pairs kept; each unordered pair once, best
first. AP = sum of precision at each mined duplicate / number of gold duplicate pairs. Keys
`average_precision, f1, precision, recall, threshold`; CSV `paraphrase_mining_evaluation[_{name}]_results.csv`.
Not included: a `util.paraphrase_mining` helper over texts (use `mine_paraphrases` on embeddings).
"""
import numpy as np
import torch

from tinyst import util
from tinyst.evaluation.base import SentenceEvaluator, csv_name, embed


def mine_paraphrases(embeddings, query_chunk_size=5000, corpus_chunk_size=100000, max_pairs=500000, top_k=100):
    """(N, D) embeddings -> (scores, i, j) arrays of mined pairs, i < j, highest cosine first."""
    emb = torch.as_tensor(embeddings)
    n = emb.shape[0]
    found = [np.empty(0), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)]
    for c0 in range(0, n, corpus_chunk_size):
        for q0 in range(0, n, query_chunk_size):
            sims = util.cos_sim(emb[q0 : q0 + query_chunk_size], emb[c0 : c0 + corpus_chunk_size])  # (Qc, Cc)
            # +1: each sentence finds itself, which is then dropped
            v, j = torch.topk(sims, min(top_k + 1, sims.shape[1]), dim=1)  # (Qc, k)
            i = torch.arange(q0, q0 + sims.shape[0])[:, None].expand_as(j)  # (Qc, k)
            v, i, j = v.flatten().numpy(), i.flatten().numpy(), (j + c0).flatten().numpy()
            keep = i != j
            found = [np.concatenate([f, x[keep]]) for f, x in zip(found, (v, i, j))]
            if len(found[0]) >= max_pairs:  # ST's bounded heap keeps the best max_pairs - 1
                top = np.argsort(-found[0], kind="stable")[: max_pairs - 1]
                found = [f[top] for f in found]
    s, i, j = found
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    # (a, b) and (b, a) can both be mined with bitwise different scores: keep the lower, as ST does
    order = np.lexsort((s, hi, lo))
    lo, hi, s = lo[order], hi[order], s[order]
    first = np.r_[True, (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])]
    lo, hi, s = lo[first], hi[first], s[first]
    order = np.lexsort((hi, lo, -s))  # score descending, ties by index
    return s[order], lo[order], hi[order]


def transitive_closure(pairs: set) -> set:
    """All pairs within each connected component of the duplicate graph."""
    parent = {}

    def root(x):
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in (tuple(p) for p in pairs):
        parent[root(a)] = root(b)
    groups = {}
    for x in parent:
        groups.setdefault(root(x), []).append(x)
    return {frozenset((a, b)) for g in groups.values() for k, a in enumerate(g) for b in g[k + 1 :]}


class ParaphraseMiningEvaluator(SentenceEvaluator):
    def __init__(self, sentences_map: dict[str, str], duplicates_list: list[tuple[str, str]] | None = None,
                 duplicates_dict: dict[str, dict[str, bool]] | None = None, add_transitive_closure: bool = False,
                 query_chunk_size: int = 5000, corpus_chunk_size: int = 100000, max_pairs: int = 500000,
                 top_k: int = 100, show_progress_bar: bool = False, batch_size: int = 16, name: str = "",
                 write_csv: bool = True, truncate_dim: int | None = None):
        super().__init__()
        if not isinstance(sentences_map, dict) or len(sentences_map) < 2:
            raise ValueError("sentences_map must be a dict of at least 2 id -> sentence entries")
        for arg, v in (("query_chunk_size", query_chunk_size), ("corpus_chunk_size", corpus_chunk_size),
                       ("max_pairs", max_pairs), ("top_k", top_k)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{arg} must be a positive integer, got {v!r}")
        self.ids, self.sentences = list(sentences_map), list(sentences_map.values())
        pairs = set()  # unordered duplicate pairs, as frozensets of two ids
        for a, targets in (duplicates_dict or {}).items():
            pairs |= {frozenset((a, b)) for b, is_dup in targets.items() if is_dup and a != b}
        # like ST, listed pairs naming ids outside sentences_map are ignored (a subset may be evaluated)
        pairs |= {frozenset((a, b)) for a, b in (duplicates_list or []) if a in sentences_map and b in sentences_map}
        if add_transitive_closure:
            pairs = transitive_closure(pairs)
        self.duplicates = {p for p in pairs if len(p) == 2 and all(x in sentences_map for x in p)}
        self.total_num_duplicates = len(self.duplicates)
        if self.total_num_duplicates == 0:
            raise ValueError("no duplicate pair names two ids of sentences_map, so precision/recall are undefined")
        self.add_transitive_closure, self.query_chunk_size, self.corpus_chunk_size = (
            add_transitive_closure, query_chunk_size, corpus_chunk_size)
        self.max_pairs, self.top_k = max_pairs, top_k
        self.show_progress_bar, self.batch_size = show_progress_bar, batch_size
        self.name, self.write_csv, self.truncate_dim = name, write_csv, truncate_dim
        self.csv_file = csv_name("paraphrase_mining_evaluation", name)
        self.csv_headers = ["epoch", "steps", "precision", "recall", "f1", "threshold", "average_precision"]
        self.primary_metric = "average_precision"

    def __call__(self, model, output_path=None, epoch=-1, steps=-1) -> dict[str, float]:
        emb = embed(model, self.sentences, self.truncate_dim, batch_size=self.batch_size,
                    show_progress_bar=self.show_progress_bar, convert_to_tensor=True).float().cpu()  # (N, D)
        s, i, j = mine_paraphrases(emb, self.query_chunk_size, self.corpus_chunk_size, self.max_pairs, self.top_k)
        dup = np.array([frozenset((self.ids[a], self.ids[b])) in self.duplicates for a, b in zip(i, j)], dtype=bool)
        correct = np.cumsum(dup)  # (P,) duplicates among the first r+1 mined pairs
        precision = correct / np.arange(1, len(dup) + 1)
        recall = correct / self.total_num_duplicates
        with np.errstate(invalid="ignore"):
            f1 = np.where(dup, 2 * precision * recall / (precision + recall), 0.0)  # scored only at hits
        ap = float(precision[dup].sum() / self.total_num_duplicates)
        best_f1 = best_p = best_r = threshold = 0.0
        if dup.any():
            r = int(np.argmax(f1))  # first best
            best_f1, best_p, best_r = float(f1[r]), float(precision[r]), float(recall[r])
            threshold = float((s[r] + s[min(r + 1, len(s) - 1)]) / 2)
        metrics = dict(average_precision=ap, f1=best_f1, precision=best_p, recall=best_r, threshold=threshold)
        return self.finish(model, metrics, output_path, epoch, steps, [best_p, best_r, best_f1, threshold, ap])
