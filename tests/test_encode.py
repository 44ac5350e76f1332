"""`encode` options against sentence-transformers 3.4.1 on one tiny model: output shapes and types,
prompts, truncate_dim, normalisation, quantization, token outputs, similarity functions."""
import numpy as np
import pytest
import torch

import tinyst
from tiny_models import make_tiny_model_dir

st = pytest.importorskip("sentence_transformers")
TEXTS = ["A man is playing a guitar.", "hi", "The cat sits on the mat by the door.", "Two dogs run."]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    path = make_tiny_model_dir(tmp_path_factory.mktemp("enc"), "bert")
    ts_model = tinyst.SentenceTransformer(str(path), device="cpu", prompts={"query": "query: "})
    st_model = st.SentenceTransformer(str(path), device="cpu", prompts={"query": "query: "})
    return ts_model, st_model


def test_output_types(pair):
    """str -> 1-D vector; list -> (N, D) numpy; convert_to_tensor -> tensor; convert_to_numpy=False -> list."""
    ts_model, _ = pair
    assert ts_model.encode("hello").shape == (32,)
    assert isinstance(ts_model.encode(TEXTS), np.ndarray) and ts_model.encode(TEXTS).shape == (4, 32)
    t = ts_model.encode(TEXTS, convert_to_tensor=True)
    assert isinstance(t, torch.Tensor) and t.shape == (4, 32) and not t.requires_grad
    lst = ts_model.encode(TEXTS, convert_to_numpy=False)
    assert isinstance(lst, list) and len(lst) == 4 and lst[0].shape == (32,)


@pytest.mark.parametrize(
    "kwargs",
    [dict(normalize_embeddings=True), dict(truncate_dim=8), dict(prompt_name="query"), dict(prompt="passage: "),
     dict(batch_size=1), dict(precision="int8"), dict(precision="uint8"), dict(precision="binary"),
     dict(precision="ubinary")],
)
def test_options_match_st(pair, kwargs):
    """Each encode option gives ST's values (quantized outputs exactly, floats within 2e-5)."""
    ts_model, st_model = pair
    if "truncate_dim" in kwargs:  # ST 3.4's encode only reads model.truncate_dim; tinyst takes both
        st_model.truncate_dim = kwargs["truncate_dim"]
    a, b = ts_model.encode(TEXTS, **kwargs), st_model.encode(TEXTS, **kwargs)
    st_model.truncate_dim = None
    assert a.dtype == b.dtype and a.shape == b.shape
    if a.dtype == np.float32:
        assert np.abs(a - b).max() < 2e-5
    else:  # int8 bins can flip on a 1e-7 difference right at a bin edge: allow one step
        assert np.abs(a.astype(int) - b.astype(int)).max() <= (1 if "int8" in kwargs["precision"] else 0)


def test_output_value_none_and_tokens(pair):
    """output_value=None gives per-text dicts; token_embeddings are unpadded per text, as ST."""
    ts_model, st_model = pair
    rows = ts_model.encode(TEXTS, output_value=None)
    assert {"sentence_embedding", "token_embeddings", "input_ids"} <= rows[0].keys()
    toks = ts_model.encode(TEXTS, output_value="token_embeddings")
    ref = st_model.encode(TEXTS, output_value="token_embeddings")
    assert [t.shape for t in toks] == [t.shape for t in ref]


@pytest.mark.parametrize("fn", ["cosine", "dot", "euclidean", "manhattan"])
def test_similarity_functions(pair, fn, tmp_path):
    """model.similarity / similarity_pairwise follow similarity_fn_name exactly as ST, and it is saved."""
    ts_model, st_model = pair
    ts_model.similarity_fn_name, st_model.similarity_fn_name = fn, fn
    e = ts_model.encode(TEXTS, convert_to_tensor=True)
    assert torch.allclose(ts_model.similarity(e, e), st_model.similarity(e, e), atol=1e-5)
    assert torch.allclose(ts_model.similarity_pairwise(e, e.flip(0)), st_model.similarity_pairwise(e, e.flip(0)), atol=1e-5)
    ts_model.save(str(tmp_path / "m"))
    assert st.SentenceTransformer(str(tmp_path / "m"), device="cpu").similarity_fn_name == fn
    ts_model.similarity_fn_name = "cosine"


def test_util_functions_match_st():
    """tinyst.util similarity helpers equal sentence_transformers.util on random data."""
    from sentence_transformers import util as su

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 16, generator=g), torch.randn(5, 16, generator=g)
    for name in ["cos_sim", "dot_score", "pairwise_cos_sim", "pairwise_dot_score", "pairwise_angle_sim",
                 "euclidean_sim", "manhattan_sim", "pairwise_euclidean_sim", "pairwise_manhattan_sim"]:
        assert torch.allclose(getattr(tinyst.util, name)(a, b), getattr(su, name)(a, b), atol=1e-5), name


def test_encode_leaves_no_autograd(pair):
    """encode runs without building a graph and leaves the model in eval mode."""
    ts_model, _ = pair
    ts_model.train()
    out = ts_model.encode(TEXTS, convert_to_tensor=True)
    assert out.grad_fn is None and not ts_model.training


def test_token_budget_batches(pair):
    """plan_batches: longest (in tokens) first, every index once, each batch within batch_size x the longest
    text's tokens (ST's first padded batch), short texts in bigger batches; and results do not depend on it."""
    from tinyst.encode import plan_batches

    ours, _ = pair
    texts = [("word " * n).strip() for n in (3, 40, 1, 17, 17, 60, 2, 5, 9, 33) * 5]
    lengths = ours[0].token_lengths(texts)
    assert lengths == ours.tokenize(texts)["attention_mask"].sum(1).tolist()
    order, batches = plan_batches(ours, texts, batch_size=4)
    assert sorted(order.tolist()) == list(range(len(texts)))
    assert [lengths[i] for i in order] == sorted(lengths, reverse=True)
    assert [b[0] for b in batches[1:]] == [b[1] for b in batches[:-1]] and batches[-1][1] == len(texts)
    budget = 4 * max(lengths)
    assert all((stop - start) * lengths[order[start]] <= budget or stop - start <= 4 for start, stop in batches)
    assert max(stop - start for start, stop in batches) > 4
    one_by_one = ours.encode(texts, batch_size=1)  # 50 batches: prepacked weights (ops.onednn_inference)
    assert np.abs(ours.encode(texts, batch_size=4) - one_by_one).max() <= 1e-5
    assert np.abs(ours.encode(texts, batch_size=len(texts)) - one_by_one).max() <= 1e-5  # one batch: plain weights


def test_concurrent_encodes_of_one_model(pair):
    """Threads encoding with one model at once (each call prepacks and drops the weights) all get the
    single-threaded result, with no error."""
    import threading

    ours, _ = pair
    texts = [("word " * n).strip() for n in range(1, 41)]  # batch_size 2: 20 batches, prepacked weights
    ref = ours.encode(texts, batch_size=2)
    diffs, errors = [], []

    def work():
        try:
            diffs.extend(float(np.abs(ours.encode(texts, batch_size=2) - ref).max()) for _ in range(3))
        except Exception as e:  # noqa: BLE001 - reported by the assert below
            errors.append(repr(e))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(diffs) == 9 and max(diffs) <= 1e-6
