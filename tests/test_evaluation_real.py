"""Evaluator parity on the shared real data with the real L3 model: tinyst's evaluators on
tinyst.SentenceTransformer vs sentence-transformers 3.4.1's evaluators on its own model, both
loading paraphrase-MiniLM-L3-v2. Keys must be identical and values within 1e-6 (relative for values
above 1 in size, e.g. dot-product thresholds); CSV names and header lines equal. Large sets are
subsampled deterministically to keep each test short."""
import os

import numpy as np
import pytest

import tinyst
import tinyst.evaluation as te
from shared_data import read_cranfield, read_msrp, read_sick_triplets, read_stsb

st = pytest.importorskip("sentence_transformers")
st_eval = pytest.importorskip("sentence_transformers.evaluation")
TOL = 1e-6


@pytest.fixture(scope="module")
def models(l3_path):
    """(tinyst model, ST model), both loaded from the shared L3 folder on CPU."""
    with pytest.warns(UserWarning, match="pooler"):
        ours = tinyst.SentenceTransformer(str(l3_path), device="cpu")
    return ours, st.SentenceTransformer(str(l3_path), device="cpu")


def compare(make, models, tmp_path):
    """Run make(te) on the tinyst model and make(st_eval) on the ST model; compare everything.
    Returns the worst absolute difference over all values."""
    ours_model, st_model = models
    ev_ours, ev_st = make(te), make(st_eval)
    out = ev_ours(ours_model, output_path=str(tmp_path / "ours"), epoch=0, steps=100)
    os.makedirs(tmp_path / "st")
    ref = ev_st(st_model, output_path=str(tmp_path / "st"), epoch=0, steps=100)
    assert list(out) == list(ref)
    diffs = {k: abs(out[k] - float(ref[k])) / max(1.0, abs(float(ref[k]))) for k in ref}
    worst = max(diffs, key=diffs.get)
    assert diffs[worst] <= TOL, f"{worst}: tinyst {out[worst]} vs ST {ref[worst]}"
    assert ev_ours.primary_metric == ev_st.primary_metric
    assert sorted(os.listdir(tmp_path / "ours")) == sorted(os.listdir(tmp_path / "st"))
    for name in os.listdir(tmp_path / "st"):
        heads = [open(tmp_path / d / name, newline="").readline() for d in ("ours", "st")]
        assert heads[0] == heads[1], name
    print(f"worst diff {diffs[worst]:.2e} at {worst}")  # shown with -s, for the parity record
    return out


@pytest.mark.slow
def test_stsb_similarity_parity(models, data_dir, tmp_path):
    """STSb test (all 1,379 pairs, 4 similarity functions): Pearson/Spearman equal ST's."""
    d = read_stsb(data_dir, "test")
    scores = [s / 5 for s in d["score"]]
    fns = ["cosine", "dot", "euclidean", "manhattan"]
    out = compare(lambda m: m.EmbeddingSimilarityEvaluator(d["sentence1"], d["sentence2"], scores, name="sts-test",
                                                            similarity_fn_names=fns), models, tmp_path)
    assert out["sts-test_spearman_cosine"] == pytest.approx(0.8241, abs=1e-4)  # the data README's figure


@pytest.mark.slow
def test_sick_triplet_parity(models, data_dir, tmp_path):
    """SICK triplets (415 anchors with an entailed and a contradicting partner): accuracy equals ST's."""
    t = read_sick_triplets(data_dir)
    compare(lambda m: m.TripletEvaluator(t["anchor"], t["positive"], t["negative"], name="sick",
                                         similarity_fn_names=["cosine", "euclidean"]), models, tmp_path)


@pytest.mark.slow
def test_msrp_binary_and_paraphrase_mining_parity(models, data_dir, tmp_path):
    """MSRP test (first 600 pairs): binary classification (cosine, dot) and paraphrase mining equal ST's."""
    d = {k: v[:600] for k, v in read_msrp(data_dir, "test").items()}
    compare(lambda m: m.BinaryClassificationEvaluator(d["sentence1"], d["sentence2"], d["label"], name="msrp",
                                                      similarity_fn_names=["cosine", "dot"]), models, tmp_path / "b")
    sentences = dict(zip(d["id1"] + d["id2"], d["sentence1"] + d["sentence2"]))
    dups = [(a, b) for a, b, y in zip(d["id1"], d["id2"], d["label"]) if y == 1]
    compare(lambda m: m.ParaphraseMiningEvaluator(sentences, duplicates_list=dups, name="msrp"), models, tmp_path / "p")


@pytest.fixture(scope="module")
def cranfield(data_dir):
    return read_cranfield(data_dir)


@pytest.mark.slow
def test_cranfield_information_retrieval_parity(models, cranfield, tmp_path):
    """Cranfield (1,400 docs, 225 queries, relevance 1-4 relevant), chunked corpus: all @k equal ST's."""
    c = cranfield
    out = compare(lambda m: m.InformationRetrievalEvaluator(c["queries"], c["corpus"], c["relevant_docs"],
                                                            name="cranfield", corpus_chunk_size=500),
                  models, tmp_path)
    # the data README quotes 0.339; its reader may build document texts a little differently
    assert out["cranfield_cosine_ndcg@10"] == pytest.approx(0.339, abs=5e-3)


@pytest.mark.slow
def test_cranfield_reranking_parity(models, cranfield, tmp_path):
    """Cranfield reranking (first 30 queries; positives = relevant docs, negatives = docs judged -1
    plus 8 fixed non-relevant docs): MAP / MRR@10 / NDCG@10 equal ST's."""
    c, rng = cranfield, np.random.default_rng(0)
    docs = list(c["corpus"])
    samples = []
    for qid in list(c["queries"])[:30]:
        rel = c["relevant_docs"].get(qid, set())
        judged_bad = [d for d, code in c["relevance"].get(qid, {}).items() if code == -1]
        extra = [d for d in rng.choice(docs, 12, replace=False) if d not in rel][:8]
        samples.append({"query": c["queries"][qid], "positive": [c["corpus"][d] for d in sorted(rel, key=int)],
                        "negative": [c["corpus"][d] for d in judged_bad + extra]})
    compare(lambda m: m.RerankingEvaluator(samples, name="cranfield"), models, tmp_path)


def test_sick_label_accuracy_parity(models, data_dir, tmp_path):
    """SICK test (first 150 pairs, 3 entailment classes) through a SoftmaxLoss head with the same random
    classifier weights in both libraries: LabelAccuracyEvaluator's accuracy equals ST's."""
    import torch
    from sentence_transformers.readers import InputExample

    from shared_data import read_sick
    from tinyst.losses import SoftmaxLoss

    d = read_sick(data_dir, "test")
    classes = {"ENTAILMENT": 0, "NEUTRAL": 1, "CONTRADICTION": 2}
    examples = [InputExample(texts=[a, b], label=classes[y])
                for a, b, y in list(zip(d["sentence1"], d["sentence2"], d["label"]))[:150]]
    ours_model, st_model = models
    torch.manual_seed(0)
    head_st = st.losses.SoftmaxLoss(st_model, 384, 3)
    head_ours = SoftmaxLoss(ours_model, 384, 3)
    head_ours.classifier.load_state_dict(head_st.classifier.state_dict())
    loader = lambda: torch.utils.data.DataLoader(examples, batch_size=32)  # noqa: E731
    heads = {te: head_ours, st_eval: head_st}
    out = compare(lambda m: m.LabelAccuracyEvaluator(loader(), name="sick", softmax_model=heads[m]), models, tmp_path)
    assert 0 <= out["sick_accuracy"] <= 1
