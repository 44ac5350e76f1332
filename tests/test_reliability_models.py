"""Reliability catalogue, models: broken model folders and bad model inputs end in an error naming the file or
tensor, what was expected and what was found; a failed save leaves the previous folder as it was.

Already covered elsewhere (not repeated), in test_model_errors.py: a missing folder, missing config.json /
model.safetensors / tokenizer.json / 2_Dense/config.json, truncated and garbage safetensors, an unknown
model_type, a mis-shaped tensor, unexpected and missing tensors, a foreign module type, a Dense activation
outside torch.nn, max_seq_length above the position table, a tokenizer larger than the embedding table,
bad encode() inputs and options.
"""
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

import tinyst
import tinyst.models.weights as weights
from tiny_models import make_tiny_model_dir


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return make_tiny_model_dir(tmp_path_factory.mktemp("rm"), "bert", dense=8)


@pytest.fixture(scope="module")
def good_mpnet(tmp_path_factory):
    return make_tiny_model_dir(tmp_path_factory.mktemp("rm"), "mpnet")


@pytest.fixture
def copy(good, tmp_path):
    return shutil.copytree(good, tmp_path / "m")


def load(path):
    return tinyst.SentenceTransformer(str(path), device="cpu")


def edit_json(path, **changes):
    cfg = json.loads(path.read_text())
    cfg.update(changes)
    path.write_text(json.dumps(cfg))


def edit_weights(path, fn):
    state = load_file(str(path))
    fn(state)
    save_file(state, str(path))


BROKEN = [  # (id, damage to the folder, error, message)
    ("config.json not JSON", lambda m: (m / "config.json").write_text('{"model_type": "bert",'),
     ValueError, r"config\.json is not valid JSON"),
    ("config.json without model_type", lambda m: edit_json(m / "config.json", model_type=None),
     ValueError, r"config\.json: unknown model_type None in config\.json; tinyst supports \['bert', 'mpnet'\]"),
    ("heads do not divide hidden", lambda m: edit_json(m / "config.json", num_attention_heads=5),
     ValueError, r"config\.json: hidden_size 32 is not divisible by num_attention_heads 5"),
    ("unknown activation", lambda m: edit_json(m / "config.json", hidden_act="swiglu"),
     ValueError, r"config\.json: unsupported hidden_act 'swiglu'"),
    ("tokenizer.json corrupt", lambda m: (m / "tokenizer.json").write_text('{"version": "1.0", "model": 7}'),
     ValueError, r"tokenizer\.json is not a valid tokenizers file"),
    ("modules.json not a list", lambda m: (m / "modules.json").write_text('{"idx": 0}'),
     ValueError, r"modules\.json must hold a list of modules"),
    ("module path escapes the folder", lambda m: (m / "modules.json").write_text(json.dumps(
        [{"idx": 0, "name": "0", "path": "../elsewhere", "type": "sentence_transformers.models.Pooling"}])),
     ValueError, r"module path '\.\./elsewhere' points outside the model folder"),
    ("absolute module path", lambda m: (m / "modules.json").write_text(json.dumps(
        [{"idx": 0, "name": "0", "path": "/etc", "type": "sentence_transformers.models.Pooling"}])),
     ValueError, r"module path '/etc' points outside the model folder"),
    ("max_seq_length in sentence_bert_config above positions",
     lambda m: edit_json(m / "sentence_bert_config.json", max_seq_length=512),
     ValueError, r"max_seq_length 512 exceeds the model's 64 position embeddings "
                 r"\(from .*m/sentence_bert_config\.json\)"),
    ("Pooling size differs from the encoder",
     lambda m: edit_json(m / "1_Pooling/config.json", word_embedding_dimension=16),
     ValueError, r"modules\.json: Pooling expects inputs of size 16, but the module before it outputs 32"),
    ("unknown Pooling option", lambda m: edit_json(m / "1_Pooling/config.json", pooling_mode_magic=True),
     ValueError, r"1_Pooling/config\.json: unknown Pooling option\(s\) \['pooling_mode_magic'\]"),
    ("Pooling config without dimension", lambda m: (m / "1_Pooling/config.json").write_text("{}"),
     ValueError, r"1_Pooling/config\.json has no word_embedding_dimension"),
    ("Dense weights do not fit its config", lambda m: edit_json(m / "2_Dense/config.json", out_features=9),
     ValueError, r"2_Dense: Dense weights do not match its config"),
    ("Dense input size differs from Pooling", lambda m: (
        edit_json(m / "2_Dense/config.json", in_features=16),
        edit_weights(m / "2_Dense/model.safetensors", lambda s: s.update({"linear.weight": torch.zeros(8, 16)}))),
     ValueError, r"Dense expects inputs of size 16, but the module before it outputs 32"),
    ("Dense config without sizes", lambda m: (m / "2_Dense/config.json").write_text('{"bias": true}'),
     ValueError, r"2_Dense/config\.json: Dense needs in_features and out_features, got keys \['bias'\]"),
    ("Dense weights truncated", lambda m: (m / "2_Dense/model.safetensors").write_bytes(b"\x10" * 20),
     ValueError, r"2_Dense/model\.safetensors is not a readable safetensors file"),
    ("integer tensor where floats belong", lambda m: edit_weights(m / "model.safetensors", lambda s: s.update(
        {"embeddings.LayerNorm.weight": torch.ones(32, dtype=torch.int64)})),
     ValueError, r"tensor 'embeddings\.LayerNorm\.weight' has dtype torch\.int64, expected a floating-point tensor"),
    ("NaN in a weight", lambda m: edit_weights(m / "model.safetensors", lambda s: s["encoder.layer.1.output.dense.bias"]
                                                 .__setitem__(3, float("nan"))),
     ValueError, r"tensor 'encoder\.layer\.1\.output\.dense\.bias' holds NaN or infinite values"),
]


@pytest.mark.parametrize("name,damage,error,message", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_model_folder(name, damage, error, message, copy):
    """Each broken folder is refused at load with the file (or tensor), the expected and the found value."""
    damage(copy)
    with pytest.raises(error, match=message):
        load(copy)


@pytest.mark.parametrize("arch", ["bert", "mpnet"])
def test_token_ids_and_lengths_beyond_the_tables(arch, good, good_mpnet):
    """Features built by hand with ids outside the vocabulary or more tokens than positions: a ValueError,
    not an IndexError (or, on CUDA, a device-side assert that ends the process)."""
    model = load(good if arch == "bert" else good_mpnet)
    vocab, positions = model[0].auto_model.config.vocab_size, model[0].max_positions
    ok = model.tokenize(["a short text"])
    for bad_id in (vocab, -1):
        ids = ok["input_ids"].clone()
        ids[0, 1] = bad_id
        with pytest.raises(ValueError, match=rf"input_ids holds ids from -?\d+ to \d+, outside the embedding table "
                                             rf"\[0, {vocab}\)"):
            model({**ok, "input_ids": ids})
    long = {k: v[:, :1].repeat(1, positions + 1) for k, v in ok.items()}
    with pytest.raises(ValueError, match=rf"input_ids has {positions + 1} tokens but the model has {positions} "
                                         r"position embeddings; tokenize with truncation"):
        model(long)
    assert model(ok)["sentence_embedding"].isfinite().all()  # the checks pass valid input untouched


def test_bad_max_seq_length_values(good):
    """max_seq_length must be an int >= 2: floats, strings and 1 are refused by name."""
    model = load(good)
    for value in (1, 12.5, "64"):
        with pytest.raises(ValueError, match=r"max_seq_length must be an int >= 2, got"):
            model.max_seq_length = value


def test_failed_save_leaves_previous_folder_intact(good, tmp_path, monkeypatch):
    """A save that dies half-way (disk full while writing weights) leaves the old folder byte-identical and no temp."""
    target = shutil.copytree(good, tmp_path / "saved")
    before = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    model = load(good)

    def disk_full(state, path):
        path.with_name(path.name + ".tmp").write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(weights, "save_safetensors", disk_full)
    monkeypatch.setattr("tinyst.models.transformer.save_safetensors", disk_full)
    with pytest.raises(OSError, match="No space left on device"):
        model.save(str(target))
    assert {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved"]
