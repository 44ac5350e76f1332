"""Every tutorial runs (in its --fast mode) as a user would start it: a subprocess from the repo root,
exit code 0, and a last line `<evaluator key>: <figure>`. The main job's saved model must load in
sentence-transformers with the same embeddings; the slow tests run the full recipes and check the
figures quoted in the README against the references in ../shared/data/README.md.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DATA_DIR, MODELS_DIR

REPO = Path(__file__).resolve().parents[1]
TUTORIALS = REPO / "tutorials"
LAST_LINE = re.compile(r"^(\S+): (-?\d+\.\d{4})$")


def run(script: str, *args, env=None, launcher=None, timeout=600) -> tuple[str, float]:
    """Run tutorials/<script> with args; return (stdout, the figure on the last line)."""
    env = {**os.environ, "TINYST_DATA": str(DATA_DIR), "TINYST_MODELS": str(MODELS_DIR), **(env or {})}
    cmd = [*(launcher or [sys.executable]), str(TUTORIALS / script), *map(str, args)]
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{script} failed:\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}"
    lines = res.stdout.strip().splitlines()
    match = LAST_LINE.match(lines[-1]) if lines else None
    assert match, f"{script}: last line is not '<metric>: <value>':\n{res.stdout[-2000:]}"
    return res.stdout, float(match.group(2))


def metric_key(stdout: str) -> str:
    return LAST_LINE.match(stdout.strip().splitlines()[-1]).group(1)


def tutorial_data():
    """tutorials/data.py as a module (under its own name, so no other `data` module is shadowed)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("tinyst_tutorial_data", TUTORIALS / "data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_main_job_fast_trains_and_saves_a_model_sentence_transformers_loads(tmp_path):
    """The offline main job builds stdlib data, trains from scratch, and saves a model ST loads identically."""
    out, after = run("train_from_scratch.py", "--fast", "--output-dir", tmp_path)
    assert metric_key(out) == "held-out_cosine_ndcg@10"
    before = float(re.search(r"before training: \S+ = (\d\.\d+)", out).group(1))
    assert 0.0 <= before < after <= 1.0  # even 24 steps on 256 pairs beat the random start
    assert "| held-out_cosine_mrr@10 |" in out  # the before/after table
    st = pytest.importorskip("sentence_transformers")
    import numpy as np

    from tinyst import SentenceTransformer

    texts = ["Return the number of items in the queue.", "def qsize(self): not reliable."]
    ours = SentenceTransformer(str(tmp_path / "final"), device="cpu").encode(texts)
    theirs = st.SentenceTransformer(str(tmp_path / "final"), device="cpu").encode(texts)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_main_job_finetunes_a_given_model_on_stsb(data_dir, l3_path, tmp_path):
    """--model L3 --data stsb: CoSENT finetuning; the starting figure is ST's own on the same 200 test pairs."""
    out, after = run("train_from_scratch.py", "--fast", "--model", l3_path, "--data", "stsb", "--output-dir", tmp_path)
    assert metric_key(out) == "sts-test_spearman_cosine" and "loss: cosent" in out
    assert (tmp_path / "final" / "modules.json").is_file()
    st = pytest.importorskip("sentence_transformers")
    from sentence_transformers.evaluation import EmbeddingSimilarityEvaluator

    test = tutorial_data().read_stsb(data_dir, "test")
    ref = EmbeddingSimilarityEvaluator(test["sentence1"][:200], test["sentence2"][:200], test["score"][:200],
                                       name="sts-test")(st.SentenceTransformer(str(l3_path), device="cpu"))
    before = float(re.search(r"before training: sts-test_spearman_cosine = (\d\.\d+)", out).group(1))
    assert before == pytest.approx(ref["sts-test_spearman_cosine"], abs=1e-4)


def test_main_job_reads_a_data_file(tmp_path):
    """--data <jsonl of pairs>: columns (question, answer) train MNRL from scratch, held-out 10% retrieved."""
    import json

    rows = [{"question": f"what does function number {i} return", "answer": f"def f{i}(): returns the value {i}"}
            for i in range(200)]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out, _ = run("train_from_scratch.py", "--fast", "--data", tmp_path / "pairs.jsonl", "--output-dir", tmp_path / "o")
    assert "training rows: 180  columns: ['question', 'answer']  loss: mnrl" in out
    assert metric_key(out) == "held-out_cosine_ndcg@10"


def test_stdlib_pairs_are_docstring_summaries_and_signatures():
    """An offline training pair: a docstring's first sentence against the signature and the rest."""
    pairs = dict(tutorial_data().stdlib_pairs())
    assert len(pairs) >= 1000 and len(set(pairs.values())) == len(pairs)  # unique queries and documents
    doc = pairs["Remove any common leading whitespace from every line in `text`."]  # textwrap.dedent
    assert doc.startswith("def dedent(text): This can be used to make triple-quoted strings line up with the left edge")
    assert "Remove any common" not in doc


def test_tutorial_without_data_says_so_and_exits_0(tmp_path):
    """A tutorial whose data folder is absent prints what is missing and exits 0."""
    env = {**os.environ, "TINYST_DATA": str(tmp_path / "nowhere"), "TINYST_MODELS": str(MODELS_DIR)}
    res = subprocess.run([sys.executable, str(TUTORIALS / "02_sts_cosent.py"), "--fast"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"shared data folder not found at {tmp_path / 'nowhere'}" in res.stdout


@pytest.mark.parametrize("script, key", [
    ("01_encode_and_search.py", "cranfield_cosine_ndcg@10"),
    ("02_sts_cosent.py", "sts-test_spearman_cosine"),
    ("03_nli_triplets.py", "sick-triplets_cosine_accuracy"),
    ("04_multi_dataset.py", "sequential_score"),
    ("05_matryoshka.py", "held-out-16_cosine_ndcg@10"),
    ("06_cached_mnrl.py", "msrp-test_cosine_ap"),
    ("07_ddp.py", "sick-triplets_cosine_accuracy"),
])
def test_tutorial_fast(script, key, data_dir, l3_path, tmp_path):
    """Each tutorial finishes in fast mode and prints its evaluator's primary figure last."""
    out, value = run(script, "--fast", "--output-dir", tmp_path)
    assert metric_key(out) == key
    assert 0.0 <= value <= 1.0


ALL_NLI_README = """---
configs:
- config_name: pair
  data_files:
  - split: train
    path: pair/train-*
  - split: dev
    path: pair/dev-*
- config_name: triplet
  data_files:
  - split: train
    path: triplet/train-*
  - split: dev
    path: triplet/dev-*
---
# all-nli (a small stand-in in the hub layout)
"""


def test_nli_tutorial_reads_a_local_all_nli_folder(data_dir, l3_path, tmp_path):
    """03 runs unchanged on a folder in sentence-transformers/all-nli's hub layout (README configs + parquet)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = tutorial_data().read_sick_triplets(data_dir)
    folder = tmp_path / "all-nli"
    for subset, columns in (("pair", ["anchor", "positive"]), ("triplet", ["anchor", "positive", "negative"])):
        (folder / subset).mkdir(parents=True)
        for split, part in (("train", slice(0, 300)), ("dev", slice(300, None))):
            table = pa.table({c: rows[c][part] for c in columns})
            pq.write_table(table, folder / subset / f"{split}-00000-of-00001.parquet")
    (folder / "README.md").write_text(ALL_NLI_README)
    out, _ = run("03_nli_triplets.py", "--fast", "--data", folder, "--output-dir", tmp_path / "out")
    assert metric_key(out) == "all-nli-dev_cosine_accuracy"
    assert "num_rows: 64" in out  # --fast takes 64 training triplets from the train split


def test_ddp_tutorial_under_torchrun(data_dir, l3_path, tmp_path):
    """07 under torchrun with 2 gloo processes: rank 0 alone prints the figure."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    out, value = run("07_ddp.py", "--fast", "--output-dir", tmp_path, launcher=launcher,
                     env={"OMP_NUM_THREADS": "1"})
    assert "world size 2" in out and out.count("sick-triplets_cosine_accuracy:") == 1
    assert 0.0 <= value <= 1.0


@pytest.mark.slow
def test_sts_tutorial_full_recipe_matches_sentence_transformers(data_dir, l3_path, tmp_path):
    """02 in full mode: from L3's 0.8241 to within 0.005 of ST 3.4.1's 0.8334 (shared data README)."""
    out, after = run("02_sts_cosent.py", "--output-dir", tmp_path, timeout=1800)
    before = float(re.search(r"before training: sts-test_spearman_cosine = (\d\.\d+)", out).group(1))
    assert before == pytest.approx(0.8241, abs=5e-4)
    assert after > 0.8241 and abs(after - 0.8334) < 0.005


@pytest.mark.slow
def test_main_job_full_run_gains_clearly(tmp_path):
    """The main job with no arguments: held-out nDCG@10 rises by more than 0.15 over the random start."""
    out, after = run("train_from_scratch.py", "--output-dir", tmp_path, timeout=1800)
    before = float(re.search(r"before training: \S+ = (\d\.\d+)", out).group(1))
    assert after > before + 0.15
