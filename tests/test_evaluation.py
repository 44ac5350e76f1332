"""tinyst.evaluation vs sentence-transformers 3.4.1's evaluators, both driven by one deterministic
fake model (so any difference is the evaluator's), plus the bad-input errors. Fast: no transformer."""
import os
import zlib
from contextlib import contextmanager
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import tinyst.evaluation as te
from tinyst import util

st_eval = pytest.importorskip("sentence_transformers.evaluation")


class FakeModel:
    """Embeds a text as the mean of fixed random word vectors plus a small per-text offset; speaks
    enough of both libraries' model surface (encode, similarity, truncation, tokenize, model card)."""

    def __init__(self, dim=24, similarity_fn_name="cosine", prompts=None):
        self.dim, self.similarity_fn_name, self.prompts = dim, similarity_fn_name, prompts or {}
        self.truncate_dim, self.device, self.calls = None, torch.device("cpu"), []
        self.model_card_data = SimpleNamespace(set_evaluation_metrics=lambda *a: self.calls.append(a))

    @staticmethod
    def _vec(token, dim):
        return np.random.default_rng(zlib.crc32(token.encode())).normal(size=dim)

    def encode(self, sentences, prompt_name=None, prompt=None, batch_size=32, show_progress_bar=None,
               output_value="sentence_embedding", precision="float32", convert_to_numpy=True,
               convert_to_tensor=False, device=None, normalize_embeddings=False, truncate_dim=None, **kw):
        prompt = prompt if prompt is not None else self.prompts.get(prompt_name, "")
        texts = [prompt + t for t in sentences]
        emb = np.stack([np.mean([self._vec(w, self.dim) for w in t.lower().split()] or [np.zeros(self.dim)], 0)
                        + 0.05 * self._vec("#" + t, self.dim) for t in texts]).astype(np.float32)
        dim = truncate_dim or self.truncate_dim
        emb = emb[:, :dim] if dim else emb
        if normalize_embeddings:
            emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
        if precision and precision != "float32":
            emb = util.quantize_embeddings(emb, precision)
        if convert_to_tensor:
            return torch.from_numpy(emb)
        return emb if convert_to_numpy else list(torch.from_numpy(emb))

    @contextmanager
    def truncate_sentence_embeddings(self, truncate_dim):
        old, self.truncate_dim = self.truncate_dim, truncate_dim
        yield
        self.truncate_dim = old

    def similarity(self, a, b):
        return util.SIMILARITY_FNS[self.similarity_fn_name](a, b)

    def eval(self):
        return self

    def tokenize(self, texts):  # one "token": the text's hash, enough for the fake classifier below
        return {"input_ids": torch.tensor([[zlib.crc32(t.encode()) % 1000] for t in texts])}

    def smart_batching_collate(self, batch):  # what ST's LabelAccuracyEvaluator installs
        cols = [self.tokenize([ex.texts[i] for ex in batch]) for i in range(len(batch[0].texts))]
        return cols, torch.tensor([ex.label for ex in batch])


WORDS = ("a man woman dog cat plays runs eats guitar ball food park the on in with red big small young old "
         "child car drives street house sits table reads book water swims fast slow happy").split()


def sentences(n, seed, length=(3, 9)):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, rng.integers(*length))) for _ in range(n)]


def pairs(n=120, seed=0):
    """Pairs where half the second sentences are light edits of the first (similar), half random."""
    rng = np.random.default_rng(seed)
    s1, other = sentences(n, seed), sentences(n, seed + 1)
    label = rng.integers(0, 2, n)
    s2 = [" ".join(a.split()[:-1] + [rng.choice(WORDS)]) if y else b for a, b, y in zip(s1, other, label)]
    return s1, s2, label


def assert_same(ours: dict, theirs: dict, tol=1e-6):
    assert list(ours) == list(theirs)
    for k in theirs:
        assert ours[k] == pytest.approx(float(theirs[k]), abs=tol), k


def run_both(make, model_kw=None, tmp_path=None):
    """Build the evaluator in both libraries (make(module)), run on the same fake model, compare
    keys, values, primary metric and CSV name/header; returns (ours, theirs) evaluators."""
    model_kw = model_kw or {}
    ours, theirs = make(te), make(st_eval)
    out_ours = ours(FakeModel(**model_kw), output_path=str(tmp_path / "ours") if tmp_path else None, epoch=1, steps=5)
    if tmp_path:
        os.makedirs(tmp_path / "st", exist_ok=True)
    out_st = theirs(FakeModel(**model_kw), output_path=str(tmp_path / "st") if tmp_path else None, epoch=1, steps=5)
    assert_same(out_ours, out_st)
    assert ours.primary_metric == theirs.primary_metric
    if tmp_path:
        assert sorted(os.listdir(tmp_path / "ours")) == sorted(os.listdir(tmp_path / "st"))
        for name in os.listdir(tmp_path / "st"):
            a, b = (open(tmp_path / d / name, newline="").read() for d in ("ours", "st"))
            assert a.splitlines()[0] == b.splitlines()[0]  # header line
            assert not os.path.exists(tmp_path / "ours" / (name + ".tmp"))
            assert a.endswith("\r\n") == b.endswith("\r\n")  # same line ends
            row_a, row_b = a.splitlines()[1].split(","), b.splitlines()[1].split(",")
            assert np.allclose([float(x) for x in row_a], [float(x) for x in row_b], atol=1e-6)
    return ours, theirs


# ---- parity with the same embeddings ------------------------------------------------------------


@pytest.mark.parametrize("kw", [{}, {"similarity_fn_names": ["cosine", "dot", "euclidean", "manhattan"]},
                                {"main_similarity": "dot", "similarity_fn_names": ["cosine", "dot"], "name": "sts"},
                                {"precision": "int8"}, {"precision": "ubinary", "name": "x"}, {"truncate_dim": 8}])
def test_embedding_similarity_matches_st(kw, tmp_path):
    """EmbeddingSimilarityEvaluator: same keys, values, primary metric and CSV as ST."""
    s1, s2, _ = pairs()
    gold = np.round(np.random.default_rng(3).uniform(0, 5, len(s1)), 0)  # integer scores: ties
    run_both(lambda m: m.EmbeddingSimilarityEvaluator(s1, s2, gold, **kw), tmp_path=tmp_path)


@pytest.mark.parametrize("kw", [{}, {"similarity_fn_names": ["cosine", "dot"], "name": "msrp"}, {"truncate_dim": 8}])
def test_binary_classification_matches_st(kw, tmp_path):
    """BinaryClassificationEvaluator (cosine, dot): same accuracy/F1/AP/MCC and thresholds as ST."""
    s1, s2, y = pairs(seed=4)
    run_both(lambda m: m.BinaryClassificationEvaluator(s1, s2, y.tolist(), **kw), tmp_path=tmp_path)


def test_binary_classification_distance_orientation():
    """Euclidean scores rank closer pairs higher: AP equals AP of the negated distances."""
    s1, s2, y = pairs(seed=4)
    out = te.BinaryClassificationEvaluator(s1, s2, y, similarity_fn_names=["euclidean"])(FakeModel())
    m = FakeModel()
    d = np.linalg.norm(m.encode(s1).astype(np.float64) - m.encode(s2), axis=1)
    from sklearn.metrics import average_precision_score

    assert out["euclidean_ap"] == pytest.approx(average_precision_score(y, -d), abs=1e-9)


@pytest.mark.parametrize("kw", [{}, {"similarity_fn_names": ["cosine", "dot", "euclidean", "manhattan"]},
                                {"margin": {"cosine": 0.1}, "main_similarity_function": "cosine",
                                 "similarity_fn_names": ["cosine", "manhattan"], "name": "sick"}])
def test_triplet_matches_st(kw, tmp_path):
    """TripletEvaluator: same accuracies (with margins), primary metric and CSV as ST."""
    a, p, n = sentences(80, 5), sentences(80, 6), sentences(80, 7)
    p = [x + " " + y.split()[0] for x, y in zip(a, p)]  # positives share the anchor's words
    run_both(lambda m: m.TripletEvaluator(a, p, n, **kw), tmp_path=tmp_path)


def ir_data(n_docs=300, n_queries=25, seed=8):
    rng = np.random.default_rng(seed)
    corpus = {f"d{i}": t for i, t in enumerate(sentences(n_docs, seed, (5, 14)))}
    queries, qrels = {}, {}
    for q in range(n_queries):
        rel = rng.choice(n_docs, rng.integers(1, 6), replace=False)
        queries[f"q{q}"] = " ".join(corpus[f"d{rel[0]}"].split()[:4])
        qrels[f"q{q}"] = {f"d{i}" for i in rel}
    queries["q_norel"] = "a query without relevant documents"
    return queries, corpus, qrels


@pytest.mark.parametrize("kw", [{}, {"corpus_chunk_size": 37, "name": "cran", "query_prompt": "query: "},
                                {"score_functions": {"cosine": util.cos_sim, "dot": util.dot_score},
                                 "accuracy_at_k": [1, 2], "precision_recall_at_k": [2, 20], "mrr_at_k": [5, 10],
                                 "ndcg_at_k": [3, 10], "map_at_k": [10, 400]},
                                {"truncate_dim": 8, "main_score_function": "cosine"}])
def test_information_retrieval_matches_st(kw, tmp_path):
    """InformationRetrievalEvaluator: same @k metrics, primary metric and CSV as ST (chunked corpus too)."""
    queries, corpus, qrels = ir_data()
    run_both(lambda m: m.InformationRetrievalEvaluator(queries, corpus, qrels, **kw), tmp_path=tmp_path)


def test_information_retrieval_corpus_prompt_name(tmp_path):
    """Prompt names resolve through the model's prompts for queries and corpus."""
    queries, corpus, qrels = ir_data()
    run_both(lambda m: m.InformationRetrievalEvaluator(queries, corpus, qrels, query_prompt_name="q",
                                                       corpus_prompt_name="d"),
             model_kw={"prompts": {"q": "find: ", "d": "passage: "}}, tmp_path=tmp_path)


@pytest.mark.parametrize("kw", [{}, {"at_k": 3, "name": "rr"}, {"use_batched_encoding": False}])
def test_reranking_matches_st(kw, tmp_path):
    """RerankingEvaluator: same MAP / MRR@k / NDCG@k and CSV as ST."""
    queries, corpus, qrels = ir_data(n_docs=120, n_queries=15)
    docs = list(corpus)
    samples = [{"query": queries[q], "positive": [corpus[d] for d in sorted(rel)],
                "negative": [corpus[d] for d in docs[int(q[1:]) * 5 : int(q[1:]) * 5 + 7] if d not in rel]}
               for q, rel in qrels.items()]
    samples.append({"query": "dropped", "positive": [], "negative": ["x"]})
    run_both(lambda m: m.RerankingEvaluator(samples, **kw), tmp_path=tmp_path)


@pytest.mark.parametrize("kw", [{}, {"add_transitive_closure": True, "name": "m"},
                                {"top_k": 3, "max_pairs": 40, "query_chunk_size": 17, "corpus_chunk_size": 50}])
def test_paraphrase_mining_matches_st(kw, tmp_path):
    """ParaphraseMiningEvaluator: same AP / F1 / threshold as ST, with closure and small max_pairs."""
    base = sentences(60, 9)
    sents = {f"s{i}": t for i, t in enumerate(base)}
    dups = []
    for i in range(0, 60, 3):  # every third sentence gets two near copies
        for j in range(2):
            sents[f"s{i}_{j}"] = base[i] + " " + WORDS[i % len(WORDS) + j]
        dups += [(f"s{i}", f"s{i}_0"), (f"s{i}_0", f"s{i}_1")]
    dups.append(("s0", "not-in-map"))
    run_both(lambda m: m.ParaphraseMiningEvaluator(sents, duplicates_list=dups, **kw), tmp_path=tmp_path)


def test_translation_mse_and_sequential_match_st(tmp_path):
    """TranslationEvaluator, MSEEvaluator, MSEEvaluatorFromDataFrame and SequentialEvaluator match ST."""
    src = sentences(50, 10)
    trg = [s + " with" for s in src]
    teacher = FakeModel(dim=24)
    run_both(lambda m: m.TranslationEvaluator(src, trg, name="en-de"), tmp_path=tmp_path / "t")
    run_both(lambda m: m.MSEEvaluator(src, trg, teacher_model=teacher, name="en"), tmp_path=tmp_path / "m")
    rows = [{"en": s, "de": t, "fr": t + " le"} for s, t in zip(src, trg)] + [{"en": "x", "de": " ", "fr": "y"}]
    combos = [("en", "de"), ("en", "fr")]
    run_both(lambda m: m.MSEEvaluatorFromDataFrame(rows, teacher, combos), tmp_path=tmp_path / "d")
    s1, s2, y = pairs()
    run_both(lambda m: m.SequentialEvaluator([m.TripletEvaluator(src, trg, s2[:50], name="t"),
                                              m.BinaryClassificationEvaluator(s1, s2, y.tolist(), name="b")]),
             tmp_path=tmp_path / "s")


def test_label_accuracy_matches_st(tmp_path):
    """LabelAccuracyEvaluator counts argmax hits of the softmax head, as ST."""
    from sentence_transformers.readers import InputExample

    s1, s2, y = pairs(90)
    examples = [InputExample(texts=[a, b], label=int(c) + (i % 3 == 0)) for i, (a, b, c) in enumerate(zip(s1, s2, y))]

    def head(features, labels=None):  # a fixed "classifier" over the fake token ids
        ids = features[0]["input_ids"][:, 0] + features[1]["input_ids"][:, 0]
        return None, torch.nn.functional.one_hot(ids % 3, 3).float()

    loader = lambda: torch.utils.data.DataLoader(examples, batch_size=16)  # noqa: E731
    run_both(lambda m: m.LabelAccuracyEvaluator(loader(), name="nli", softmax_model=head), tmp_path=tmp_path)


def test_default_similarity_is_the_models(tmp_path):
    """With no similarity_fn_names / score_functions, evaluators use model.similarity_fn_name ("dot" here)."""
    s1, s2, y = pairs()
    queries, corpus, qrels = ir_data()
    makers = [lambda m: m.EmbeddingSimilarityEvaluator(s1, s2, y.astype(float)),
              lambda m: m.BinaryClassificationEvaluator(s1, s2, y.tolist()),
              lambda m: m.TripletEvaluator(s1, s2, s2[::-1]),
              lambda m: m.InformationRetrievalEvaluator(queries, corpus, qrels)]
    for i, make in enumerate(makers):
        ours, _ = run_both(make, model_kw={"similarity_fn_name": "dot"}, tmp_path=tmp_path / str(i))
        assert ours.primary_metric in ("spearman_dot", "dot_ap", "dot_accuracy", "dot_ndcg@10")


# ---- the shared contract --------------------------------------------------------------------------


def test_csv_appends_rows_and_model_card_gets_metrics(tmp_path):
    """A second call appends one row under the same header; metrics reach model_card_data."""
    s1, s2, y = pairs()
    ev, model = te.EmbeddingSimilarityEvaluator(s1, s2, y.astype(float), name="dev"), FakeModel()
    ev(model, str(tmp_path), epoch=0, steps=10)
    ev(model, str(tmp_path), epoch=1, steps=20)
    lines = (tmp_path / "similarity_evaluation_dev_results.csv").read_text().splitlines()
    assert lines[0] == "epoch,steps,cosine_pearson,cosine_spearman" and len(lines) == 3
    assert lines[2].startswith("1,20,")
    assert len(model.calls) == 2 and model.calls[0][1] == ev(model)  # (evaluator, metrics, epoch, step)
    assert [f for f in os.listdir(tmp_path) if f.endswith(".tmp")] == []  # the temp file was swapped in


def test_base_class_and_similarity_function():
    """prefix_name_to_metrics, description and SimilarityFunction behave as in ST."""
    ev = te.SentenceEvaluator()
    ev.primary_metric = "ap"
    assert ev.prefix_name_to_metrics({"ap": np.float32(0.5)}, "dev") == {"dev_ap": 0.5}
    assert ev.primary_metric == "dev_ap"
    assert te.BinaryClassificationEvaluator(["a"], ["b"], [1]).description == "Binary Classification"
    assert te.SimilarityFunction("dot") is te.SimilarityFunction.DOT_PRODUCT
    assert te.SimilarityFunction.possible_values() == ["cosine", "dot", "euclidean", "manhattan"]
    assert te.SimilarityFunction.to_similarity_fn("cosine") is util.cos_sim


# ---- bad input -------------------------------------------------------------------------------------


def test_bad_inputs_raise_clear_errors():
    """Lengths, empty lists, NaN scores, non-binary labels, unknown qrels ids, bad options: clear errors."""
    with pytest.raises(ValueError, match="lengths differ"):
        te.EmbeddingSimilarityEvaluator(["a", "b"], ["c"], [1.0, 2.0])
    with pytest.raises(ValueError, match="lengths differ"):
        te.EmbeddingSimilarityEvaluator(["a", "b"], ["c", "d"], [1.0])
    with pytest.raises(ValueError, match="empty"):
        te.EmbeddingSimilarityEvaluator([], [], [])
    with pytest.raises(ValueError, match="NaN"):
        te.EmbeddingSimilarityEvaluator(["a", "b"], ["c", "d"], [1.0, float("nan")])
    with pytest.raises(ValueError, match="precision"):
        te.EmbeddingSimilarityEvaluator(["a"], ["b"], [1.0], precision="int4")
    with pytest.raises(ValueError, match="unknown similarity"):
        te.EmbeddingSimilarityEvaluator(["a"], ["b"], [1.0], similarity_fn_names=["cos"])
    with pytest.raises(ValueError, match="0 or 1"):
        te.BinaryClassificationEvaluator(["a", "b"], ["c", "d"], [1, 2])
    with pytest.raises(ValueError, match="lengths differ"):
        te.BinaryClassificationEvaluator(["a", "b"], ["c", "d"], [1])
    with pytest.raises(ValueError, match="lengths differ"):
        te.TripletEvaluator(["a"], ["b"], ["c", "d"])
    with pytest.raises(TypeError, match="list of texts"):
        te.TripletEvaluator("abc", "def", "ghi")
    with pytest.raises(ValueError, match="margin"):
        te.TripletEvaluator(["a"], ["b"], ["c"], margin={"cosin": 0.1})
    q, c = {"q1": "x"}, {"d1": "y"}
    with pytest.raises(ValueError, match="missing from the corpus"):
        te.InformationRetrievalEvaluator(q, c, {"q1": {"d1", "d9"}})
    with pytest.raises(ValueError, match="no query"):
        te.InformationRetrievalEvaluator(q, c, {"q7": {"d1"}})
    with pytest.raises(ValueError, match="corpus is empty"):
        te.InformationRetrievalEvaluator(q, {}, {"q1": {"d1"}})
    with pytest.raises(ValueError, match="ndcg_at_k"):
        te.InformationRetrievalEvaluator(q, c, {"q1": {"d1"}}, ndcg_at_k=[0])
    with pytest.raises(ValueError, match="both a positive and a negative"):
        te.RerankingEvaluator([{"query": "q", "positive": ["a"], "negative": []}])
    with pytest.raises(ValueError, match="'query'"):
        te.RerankingEvaluator([{"q": "q", "positive": ["a"], "negative": ["b"]}])
    with pytest.raises(ValueError, match="no duplicate pair"):
        te.ParaphraseMiningEvaluator({"a": "x", "b": "y"}, duplicates_list=[("a", "zz")])
    with pytest.raises(ValueError, match="differ in shape"):
        te.MSEEvaluator(["a"], ["b"], teacher_model=FakeModel(dim=8))(FakeModel(dim=6))
    with pytest.raises(ValueError, match="no column 'xx'"):
        te.MSEEvaluatorFromDataFrame([{"en": "a"}], FakeModel(), [("en", "xx")])
    with pytest.raises(ValueError, match="at least one evaluator"):
        te.SequentialEvaluator([])
    with pytest.raises(ValueError, match="not found in the NanoBEIR"):
        te.NanoBEIREvaluator(["msmarco", "nope"])
    with pytest.raises(ValueError, match="cannot be empty"):
        te.NanoBEIREvaluator([])


def test_nan_embeddings_raise_on_call():
    """A model that returns NaN embeddings makes the metric step fail with a clear ValueError."""

    class NaNModel(FakeModel):
        def encode(self, *a, **kw):
            out = super().encode(*a, **kw)
            out[0, 0] = np.nan
            return out

    s1, s2, y = pairs(20)
    with pytest.raises(ValueError, match="NaN"):
        te.EmbeddingSimilarityEvaluator(s1, s2, y.astype(float))(NaNModel())


# ---- NanoBEIR through tinyst.load_dataset, from a fake HF cache -------------------------------------

README = """---
configs:
- config_name: corpus
  data_files:
  - split: train
    path: corpus/train-*
- config_name: queries
  data_files:
  - split: train
    path: queries/train-*
- config_name: qrels
  data_files:
  - split: train
    path: qrels/train-*
---
# fake NanoBEIR dataset
"""


def fake_nanobeir_cache(root, names=("msmarco", "scifact"), qrel_to_empty=False) -> dict:
    """Write hub-layout snapshots of small NanoBEIR look-alikes under root/hub; returns their files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = {}
    for k, name in enumerate(names):
        hub_id = "zeta-alpha-ai/Nano" + te.nanobeir.DATASETS[name]
        queries, corpus, qrels = ir_data(n_docs=80, n_queries=6, seed=20 + k)
        corpus["empty"] = ""  # dropped, like ST does
        if qrel_to_empty:
            qrels["q0"].add("empty")
        sha = f"{k + 1:040x}"
        repo = root / "hub" / f"datasets--{hub_id.replace('/', '--')}"
        snap = repo / "snapshots" / sha
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text(sha)
        tables = {
            "corpus": {"_id": list(corpus), "title": [""] * len(corpus), "text": list(corpus.values())},
            "queries": {"_id": list(queries), "text": list(queries.values())},
            "qrels": {"query-id": [q for q, ds in qrels.items() for _ in sorted(ds)],
                      "corpus-id": [d for ds in qrels.values() for d in sorted(ds)]},
        }
        snap.mkdir(parents=True)
        (snap / "README.md").write_text(README)
        for subset, cols in tables.items():
            (snap / subset).mkdir()
            path = snap / subset / "train-00000-of-00001.parquet"
            pq.write_table(pa.table(cols), path)
            files[(hub_id, subset)] = str(path)
    return files


def test_nanobeir_from_hf_cache_matches_st(tmp_path, monkeypatch):
    """NanoBEIREvaluator reads hub-layout datasets from the HF cache via tinyst.load_dataset (no
    network) and gives ST's per-dataset and aggregated keys, values and CSV files."""
    datasets = pytest.importorskip("datasets")
    files = fake_nanobeir_cache(tmp_path / "hf")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    real = datasets.load_dataset
    # the oracle reads the very same parquet files through HF datasets
    monkeypatch.setattr(datasets, "load_dataset", lambda path, name, split: real(
        "parquet", data_files={"train": files[(path, name)]}, split=split, cache_dir=str(tmp_path / "hfds")))
    for kw in ({}, {"truncate_dim": 8, "query_prompts": "q: ", "aggregate_key": "avg"}):
        run_both(lambda m: m.NanoBEIREvaluator(["msmarco", "scifact"], **kw), tmp_path=tmp_path / str(len(kw)))


def test_nanobeir_drops_qrels_of_dropped_documents(tmp_path, monkeypatch):
    """A qrel naming an empty (hence dropped) document is ignored with a warning, not an error."""
    fake_nanobeir_cache(tmp_path / "hf", names=("nq",), qrel_to_empty=True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    with pytest.warns(UserWarning, match="ignored 1 qrels"):
        ev = te.NanoBEIREvaluator(["nq"], write_csv=False)
    out = ev(FakeModel())
    assert ev.primary_metric == "NanoBEIR_mean_cosine_ndcg@10"
    assert out["NanoNQ_cosine_ndcg@10"] == out[ev.primary_metric]  # one dataset: the mean is its value
