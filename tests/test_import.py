"""`import tinyst` stays light: it pulls in none of the heavy oracle libraries at import time."""
import subprocess
import sys

FORBIDDEN = ("transformers", "datasets", "sentence_transformers", "huggingface_hub", "scipy", "sklearn", "pandas",
             "accelerate", "tqdm")
# subtle: torch itself imports tqdm when it is installed (torch/hub.py), so we take what the allowed
# runtime deps load on their own as the baseline and check only what tinyst adds on top of it.
CHECK = """
import importlib, sys
def loaded():
    return {m.split(".")[0] for m in sys.modules} & set(sys.argv[1:])
import torch, numpy, tokenizers, safetensors, safetensors.torch, pyarrow, pyarrow.parquet
baseline = loaded()
importlib.import_module("tinyst")
for extra in ("tinyst.losses", "tinyst.evaluation", "tinyst.hub"):
    try:
        importlib.import_module(extra)
    except ImportError as e:
        if e.name != extra:  # the module exists but one of its own imports failed: a real problem
            raise
print(" ".join(sorted(loaded() - baseline)))
"""


def test_import_pulls_in_no_heavy_dependency():
    """A fresh interpreter importing tinyst (+ losses, evaluation, hub) loads none of the forbidden modules."""
    out = subprocess.run([sys.executable, "-c", CHECK, *FORBIDDEN], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "", f"import tinyst loaded: {out.stdout.strip()}"


def test_check_detects_a_forbidden_import():
    """The check itself works: importing huggingface_hub in tinyst's place is reported."""
    code = CHECK.replace('importlib.import_module("tinyst")', "import huggingface_hub")
    out = subprocess.run([sys.executable, "-c", code, *FORBIDDEN], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "huggingface_hub" in out.stdout.split()
