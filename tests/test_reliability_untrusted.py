"""Reliability catalogue, untrusted input: nothing in a model folder, checkpoint or dataset folder is ever
executed. Every payload below would create a marker file if run; each test asserts the marker never appears
(and a control shows the pickle payload is live when loaded unsafely).

Already covered elsewhere (not repeated): hub listings with `..`, absolute, backslash or drive paths refused
before any download (test_hub.py::test_unsafe_file_names_rejected); downloads written to a temp name, renamed
only after the size and sha256 checks, nothing left behind on failure (test_hub.py::test_corrupt_download_rejected);
a non-hex commit sha (::test_bad_listing_sha_rejected); a symlinked folder in a snapshot
(::test_symlinked_folder_in_snapshot_not_followed); README patterns reaching outside a dataset folder
(test_datasets_load.py::test_readme_patterns_stay_inside_the_folder); a foreign modules.json type and a Dense
activation outside torch.nn (test_model_errors.py).
"""
import builtins
import json
import shutil
import sys

import pytest
import torch
from safetensors.torch import load_file

import kill_worker
import tinyst
from tinyst import load_dataset
from tiny_models import make_tiny_model_dir


class Payload:
    """Unpickling this calls builtins.open(marker, "w"): the file appears only if the pickle is executed."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.open, (self.marker, "w")


def evil_code(marker) -> str:
    """Python source that creates `marker` when imported."""
    return f"open({str(marker)!r}, 'w').close()\nclass EvilModel: pass\nclass Transformer: pass\n"


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return make_tiny_model_dir(tmp_path_factory.mktemp("ru"), "bert", dense=8)


@pytest.fixture
def copy(good, tmp_path):
    return shutil.copytree(good, tmp_path / "m")


def test_payload_is_live_when_unpickled_unsafely(tmp_path):
    """Control: the payload file really runs code under weights_only=False, so the refusals below mean something."""
    torch.save({"w": Payload(tmp_path / "control")}, tmp_path / "evil.bin")
    torch.load(tmp_path / "evil.bin", weights_only=False)
    assert (tmp_path / "control").exists()


def test_malicious_pytorch_model_bin_is_refused(copy, tmp_path):
    """A pickled pytorch_model.bin with a code-running __reduce__ is refused by weights_only=True, never run."""
    marker = tmp_path / "pwned"
    state = load_file(str(copy / "model.safetensors"))
    (copy / "model.safetensors").unlink()
    torch.save({**state, "evil": Payload(marker)}, copy / "pytorch_model.bin")
    with pytest.raises(ValueError, match=r"pytorch_model\.bin could not be loaded with weights_only=True: "
                                         r".*GLOBAL io\.open.*never unpickles code"):
        tinyst.SentenceTransformer(str(copy), device="cpu")
    assert not marker.exists()


def test_clean_pytorch_model_bin_still_loads(copy):
    """A plain tensor-only pytorch_model.bin (no safetensors) loads and embeds like the safetensors folder."""
    ref = tinyst.SentenceTransformer(str(copy), device="cpu").encode(["a cat"], convert_to_tensor=True)
    torch.save(load_file(str(copy / "model.safetensors")), copy / "pytorch_model.bin")
    (copy / "model.safetensors").unlink()
    got = tinyst.SentenceTransformer(str(copy), device="cpu").encode(["a cat"], convert_to_tensor=True)
    assert torch.equal(ref, got)


def test_malicious_dense_bin_is_refused(copy, tmp_path):
    """The same payload in 2_Dense/pytorch_model.bin is refused with the file named, never run."""
    marker = tmp_path / "pwned"
    (copy / "2_Dense" / "model.safetensors").unlink()
    torch.save({"linear.weight": torch.zeros(8, 32), "evil": Payload(marker)}, copy / "2_Dense" / "pytorch_model.bin")
    with pytest.raises(ValueError, match=r"2_Dense/pytorch_model\.bin could not be loaded with weights_only=True: "
                                         r".*GLOBAL io\.open"):
        tinyst.SentenceTransformer(str(copy), device="cpu")
    assert not marker.exists()


@pytest.mark.parametrize("module_type", ["evil_module.EvilModel", "evil_module.Transformer"])
def test_modules_json_naming_code_in_the_folder(module_type, copy, tmp_path):
    """modules.json naming a class from a .py shipped in the folder (ST 3.4.1 imports it even without
    trust_remote_code for local folders) is refused, also when the class borrows a built-in name; never imported."""
    marker = tmp_path / "pwned"
    (copy / "evil_module.py").write_text(evil_code(marker))
    mods = json.loads((copy / "modules.json").read_text())
    mods[0]["type"] = module_type
    (copy / "modules.json").write_text(json.dumps(mods))
    with pytest.raises(ValueError, match=rf"unsupported module type '{module_type}'.*never imports code"):
        tinyst.SentenceTransformer(str(copy), device="cpu")
    assert not marker.exists() and "evil_module" not in sys.modules


def test_auto_map_is_ignored_with_a_warning(copy, tmp_path):
    """config.json auto_map (HF remote code) next to a modeling .py: ignored with a warning, tinyst's own BERT
    is used (same embeddings), the .py never imported, and a re-save drops the auto_map."""
    marker = tmp_path / "pwned"
    ref = tinyst.SentenceTransformer(str(copy), device="cpu").encode(["a cat"], convert_to_tensor=True)
    (copy / "modeling_evil.py").write_text(evil_code(marker))
    cfg = json.loads((copy / "config.json").read_text())
    cfg["auto_map"] = {"AutoModel": "modeling_evil.EvilModel", "AutoConfig": "modeling_evil.EvilModel"}
    (copy / "config.json").write_text(json.dumps(cfg))
    with pytest.warns(UserWarning, match=r"config\.json names custom code \(auto_map .*\); tinyst ignores it"):
        model = tinyst.SentenceTransformer(str(copy), device="cpu")
    assert torch.equal(model.encode(["a cat"], convert_to_tensor=True), ref)
    model.save(str(tmp_path / "resaved"))
    assert "auto_map" not in json.loads((tmp_path / "resaved" / "config.json").read_text())
    assert not marker.exists() and "modeling_evil" not in sys.modules


def test_custom_architecture_with_auto_map_is_refused(copy, tmp_path):
    """A model_type only custom code could build is refused by name; its code is not run."""
    marker = tmp_path / "pwned"
    (copy / "modeling_evil.py").write_text(evil_code(marker))
    cfg = json.loads((copy / "config.json").read_text())
    cfg.update(model_type="evil", auto_map={"AutoModel": "modeling_evil.EvilModel"})
    (copy / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"unknown model_type 'evil'"):
        tinyst.SentenceTransformer(str(copy), device="cpu")
    assert not marker.exists()


def test_python_files_shadowing_modules_are_never_imported(copy, tmp_path):
    """.py files named like stdlib/dependency modules (json.py, safetensors.py) in the folder are not picked up:
    the folder never goes on sys.path and the tokenizer_config's custom tokenizer class is ignored."""
    marker = tmp_path / "pwned"
    for name in ("json.py", "safetensors.py", "tokenization_evil.py", "__init__.py"):
        (copy / name).write_text(evil_code(marker))
    cfg = json.loads((copy / "tokenizer_config.json").read_text())
    cfg.update(tokenizer_class="EvilTokenizer", auto_map={"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]})
    (copy / "tokenizer_config.json").write_text(json.dumps(cfg))
    path_before = list(sys.path)
    model = tinyst.SentenceTransformer(str(copy), device="cpu")
    model.encode(["still works"])
    assert sys.path == path_before and not marker.exists() and "tokenization_evil" not in sys.modules


def test_checkpoint_pickles_never_executed(good, tmp_path):
    """A resume reads every checkpoint .pt with weights_only=True: a payload in optimizer.pt is refused,
    and a pickled training_args.bin (HF writes one) is never read at all."""
    marker, out = tmp_path / "pwned", tmp_path / "out"

    def one_step_trainer():
        trainer = kill_worker.build_trainer(good, out)
        trainer.args.max_steps = trainer.args.save_steps = 1
        return trainer

    one_step_trainer().train()
    ckpt = out / "checkpoint-1"
    torch.save(Payload(marker), ckpt / "training_args.bin")
    assert one_step_trainer().train(resume_from_checkpoint=str(ckpt)).global_step == 1  # .bin ignored: resumes fine
    torch.save({"state": {}, "param_groups": [], "evil": Payload(marker)}, ckpt / "optimizer.pt")
    with pytest.raises(ValueError, match=r"optimizer\.pt could not be loaded with weights_only=True: "
                                         r".*Unsupported global: GLOBAL io\.open"):
        one_step_trainer().train(resume_from_checkpoint=str(ckpt))
    assert not marker.exists()


def test_dataset_loading_scripts_never_run(tmp_path):
    """An HF-style loading script in a dataset folder is never executed: the folder's data files load (or
    the folder is refused for having none), and trust_remote_code is an unknown option, not a switch."""
    marker = tmp_path / "pwned"
    only_script = tmp_path / "scripted"
    only_script.mkdir()
    (only_script / "scripted.py").write_text(evil_code(marker))
    with pytest.raises(FileNotFoundError, match=r"no csv/json/parquet/arrow data files found in .*scripted"):
        load_dataset(str(only_script))
    with pytest.raises(ValueError, match=r"cannot tell the format of .*scripted\.py"):
        load_dataset(str(only_script / "scripted.py"))
    (only_script / "train.csv").write_text("sentence1,sentence2\na,b\n")
    assert load_dataset(str(only_script))["train"].to_list() == [{"sentence1": "a", "sentence2": "b"}]
    with pytest.raises(TypeError, match="trust_remote_code"):
        load_dataset(str(only_script), trust_remote_code=True)["train"]
    assert not marker.exists()
