"""Bad model folders and bad encode input end in clear errors that name the problem."""
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

import tinyst
from tiny_models import make_tiny_model_dir


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return make_tiny_model_dir(tmp_path_factory.mktemp("good"), "bert", dense=8)


@pytest.fixture
def copy(good, tmp_path):
    dst = tmp_path / "m"
    shutil.copytree(good, dst)
    return dst


def test_missing_folder(tmp_path):
    """A path that does not exist is a FileNotFoundError naming it."""
    with pytest.raises(FileNotFoundError, match="no_such_model"):
        tinyst.SentenceTransformer(str(tmp_path / "no_such_model"), local_files_only=True)


@pytest.mark.parametrize("name", ["config.json", "model.safetensors", "tokenizer.json", "2_Dense/config.json"])
def test_missing_file(copy, name):
    """Each required file, when removed, is named in a FileNotFoundError."""
    (copy / name).unlink()
    with pytest.raises(FileNotFoundError, match=name.split("/")[-1].replace(".", r"\.")):
        tinyst.SentenceTransformer(str(copy), device="cpu")


def test_truncated_safetensors(copy):
    """A truncated model.safetensors is a ValueError saying it is corrupt or truncated."""
    data = (copy / "model.safetensors").read_bytes()
    (copy / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        tinyst.SentenceTransformer(str(copy), device="cpu")


def test_garbage_safetensors(copy):
    """Random bytes in model.safetensors are a ValueError, not a crash."""
    (copy / "model.safetensors").write_bytes(b"\x07" * 64)
    with pytest.raises(ValueError, match="safetensors"):
        tinyst.SentenceTransformer(str(copy), device="cpu")


def test_unknown_model_type(copy):
    """An architecture tinyst does not implement is named in the error."""
    cfg = json.loads((copy / "config.json").read_text())
    cfg["model_type"] = "llama"
    (copy / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="llama"):
        tinyst.SentenceTransformer(str(copy), device="cpu")


def test_misshaped_weight(copy):
    """A tensor whose shape disagrees with config.json is named with both shapes."""
    state = load_file(str(copy / "model.safetensors"))
    state["encoder.layer.0.intermediate.dense.weight"] = torch.zeros(5, 32)
    save_file(state, str(copy / "model.safetensors"))
    with pytest.raises(ValueError, match=r"encoder\.layer\.0\.intermediate\.dense\.weight.*\(5, 32\)"):
        tinyst.SentenceTransformer(str(copy), device="cpu")


def test_unexpected_and_missing_weights(copy):
    """An extra tensor and a missing one are both errors that name the key."""
    state = load_file(str(copy / "model.safetensors"))
    state["encoder.layer.9.output.dense.weight"] = torch.zeros(1)
    save_file(state, str(copy / "model.safetensors"))
    with pytest.raises(ValueError, match="unexpected.*layer.9"):
        tinyst.SentenceTransformer(str(copy), device="cpu")
    del state["encoder.layer.9.output.dense.weight"], state["embeddings.LayerNorm.bias"]
    save_file(state, str(copy / "model.safetensors"))
    with pytest.raises(ValueError, match="missing.*emb.ln.bias"):
        tinyst.SentenceTransformer(str(copy), device="cpu")


def test_unknown_module_type_is_not_imported(copy):
    """modules.json naming a foreign class is refused: nothing from a model folder is imported or run."""
    mods = json.loads((copy / "modules.json").read_text())
    mods[1]["type"] = "evil_package.Backdoor"
    (copy / "modules.json").write_text(json.dumps(mods))
    with pytest.raises(ValueError, match="evil_package.Backdoor"):
        tinyst.SentenceTransformer(str(copy), device="cpu")


def test_dense_activation_must_be_torch(copy):
    """A Dense activation outside torch.nn is refused by name."""
    cfg = json.loads((copy / "2_Dense/config.json").read_text())
    cfg["activation_function"] = "os.system"
    (copy / "2_Dense/config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="os.system"):
        tinyst.SentenceTransformer(str(copy), device="cpu")


def test_max_seq_length_above_position_table(good):
    """max_seq_length beyond the position embeddings is refused with both numbers."""
    model = tinyst.SentenceTransformer(str(good), device="cpu")
    with pytest.raises(ValueError, match="65.*64"):
        model.max_seq_length = 65


def test_tokenizer_larger_than_embedding_table(copy):
    """A tokenizer with more ids than embedding rows is refused before any id falls outside the table."""
    cfg = json.loads((copy / "config.json").read_text())
    state = load_file(str(copy / "model.safetensors"))
    cfg["vocab_size"] = 100
    state["embeddings.word_embeddings.weight"] = state["embeddings.word_embeddings.weight"][:100].contiguous()
    (copy / "config.json").write_text(json.dumps(cfg))
    save_file(state, str(copy / "model.safetensors"))
    with pytest.raises(ValueError, match="embedding table"):
        tinyst.SentenceTransformer(str(copy), device="cpu")


@pytest.mark.parametrize(
    "bad,exc,msg",
    [([], ValueError, "empty"), (None, TypeError, "None"), (["ok", 3], TypeError, "item 1 is int"),
     (["ok", None], TypeError, "item 1 is NoneType"), ({"a": 1}, TypeError, "dict")],
)
def test_encode_bad_input(good, bad, exc, msg):
    """encode rejects empty lists, None and non-str items with the offending position and type."""
    model = tinyst.SentenceTransformer(str(good), device="cpu")
    with pytest.raises(exc, match=msg):
        model.encode(bad)


def test_encode_bad_options(good):
    """Unknown precision, output_value, prompt_name and a bad batch_size are named."""
    model = tinyst.SentenceTransformer(str(good), device="cpu")
    for kwargs, msg in [(dict(precision="int4"), "int4"), (dict(output_value="pooled"), "pooled"),
                        (dict(prompt_name="nope"), "nope"), (dict(batch_size=0), "batch_size")]:
        with pytest.raises(ValueError, match=msg):
            model.encode(["x"], **kwargs)
