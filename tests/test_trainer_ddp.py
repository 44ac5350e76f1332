"""DDP under torchrun on CPU: 2 gloo ranks against one plain-python process on the same global batches.

Why the runs must agree: the sampler walks one global batch order (seeded, the same on every rank)
and rank r keeps batches r, r + W, ... . With per-rank batch B, global batches 2k and 2k + 1 are rows
[2kB, 2kB + 2B) of the shuffled order: exactly the single process's batch k at batch size 2B. DDP
averages the two ranks' gradients, so a per-row mean loss (CosineSimilarityLoss) gets the union
batch's gradient; MNRL with gather_across_devices=True scores each anchor against both ranks'
candidates (rank 0's first: the union's order) and the gathered backward + DDP's mean again give the
union gradient. tests/ddp_worker.py runs both jobs; the checks below are hand-derived from that.
"""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
WORKER = HERE / "ddp_worker.py"
RANK_BATCH = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(cmd: list, what: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if res.returncode != 0:
        raise AssertionError(f"{what} failed (rc {res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-5000:]}")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Train both jobs once with 2 ranks (per-rank batch 4) and once in one process (batch 8)."""
    from tiny_models import make_tiny_model_dir

    tmp = tmp_path_factory.mktemp("ddp")
    model_dir = make_tiny_model_dir(tmp)
    launch([sys.executable, str(WORKER), str(model_dir), str(tmp / "single"), "--batch", str(2 * RANK_BATCH)],
           "single-process run")
    launch([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
            f"--master_port={free_port()}", str(WORKER), str(model_dir), str(tmp / "ddp"), "--batch", str(RANK_BATCH),
            "--jobs", "cosine", "mnrl", "nan", "small_eval"],
           "torchrun with 2 ranks")
    read = lambda p: json.loads(p.read_text())  # noqa: E731
    out = {"model_dir": model_dir, "tmp": tmp}
    for job in ("cosine", "mnrl"):
        out[job] = {"single": read(tmp / "single" / job / "rank0.json"),
                    "ranks": [read(tmp / "ddp" / job / f"rank{r}.json") for r in (0, 1)]}
    for job in ("nan", "small_eval"):
        out[job] = {"ranks": [read(tmp / "ddp" / job / f"rank{r}.json") for r in (0, 1)]}
    return out


def weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_plain_python_run_has_no_process_group(runs):
    """A plain `python` run trains without a process group; torchrun gives two ranks of a world of 2."""
    single, ranks = runs["cosine"]["single"], runs["cosine"]["ranks"]
    assert (single["process_group"], single["world_size"], single["rank"]) == (False, 1, 0)
    assert [(r["process_group"], r["world_size"], r["rank"]) for r in ranks] == [(True, 2, 0), (True, 2, 1)]


@pytest.mark.parametrize("job", ["cosine", "mnrl"])
def test_two_ranks_split_each_single_process_batch(runs, job):
    """Step by step, rank 0's batch + rank 1's batch is the single process's batch (same rows, same order)."""
    single, (r0, r1) = runs[job]["single"]["batches"], [r["batches"] for r in runs[job]["ranks"]]
    assert len(single) == len(r0) == len(r1) == 96 // (2 * RANK_BATCH)
    for k, batch in enumerate(single):
        assert len(r0[k]) == len(r1[k]) == RANK_BATCH
        assert r0[k] + r1[k] == batch, f"batch {k}"
    assert sorted(x for b in single for x in b) == sorted(set(x for b in single for x in b))  # one epoch, no repeats


@pytest.mark.parametrize("job", ["cosine", "mnrl"])
def test_final_weights_match_single_process(runs, job):
    """Two gloo ranks end with the single process's weights (per-row loss; MNRL with gathered candidates)."""
    tmp = runs["tmp"]
    start = weights(runs["model_dir"])
    single, ddp = weights(tmp / "single" / job / "final"), weights(tmp / "ddp" / job / "final")
    assert single.keys() == ddp.keys()
    diff = max(float((single[k] - ddp[k]).abs().max()) for k in single)
    moved = max(float((single[k] - start[k]).abs().max()) for k in single)
    assert moved > 1e-3, "training barely moved the weights: the comparison would prove nothing"
    assert diff < 1e-5, f"{job}: DDP vs single-process weights differ by {diff:.2e} (training moved them {moved:.2e})"
    assert all(r["global_step"] == runs[job]["single"]["global_step"] for r in runs[job]["ranks"])


@pytest.mark.parametrize("job", ["cosine", "mnrl"])
def test_logged_losses_are_means_over_ranks(runs, job):
    """Logged step losses and train_loss are the mean of the ranks' own losses, on every rank."""
    (r0, r1), single = runs[job]["ranks"], runs[job]["single"]
    logged = [h["loss"] for h in r0["log_history"] if "loss" in h]
    means = [(a + b) / 2 for a, b in zip(r0["step_losses"], r1["step_losses"])]
    assert len(logged) == len(means) == len(single["step_losses"])
    assert logged == [h["loss"] for h in r1["log_history"] if "loss" in h]
    for got, want in zip(logged, means):
        assert abs(got - want) <= 5e-5 + 1e-7  # logs round to 4 decimals
    overall = sum(means) / len(means)
    assert r0["train_loss"] == pytest.approx(overall, abs=1e-6) and r1["train_loss"] == pytest.approx(overall, abs=1e-6)
    if job == "cosine":  # a mean over equal halves is the mean over the union: the single process's loss
        assert means == pytest.approx(single["step_losses"], abs=1e-5)


def test_only_main_rank_evaluates_and_writes(runs):
    """Only rank 0 runs the evaluator, writes log.jsonl and checkpoints; rank 1 receives the metrics."""
    out, (r0, r1) = runs["tmp"] / "ddp" / "cosine", runs["cosine"]["ranks"]
    assert sorted(p.name for p in out.glob("evaluated_on_rank*")) == [f"evaluated_on_rank0_step{s}" for s in (2, 4, 6)]
    assert [h["eval_rank"] for h in r1["log_history"] if "eval_rank" in h] == [0.0, 0.0, 0.0]
    lines = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert len(lines) == len(r0["log_history"])  # written once, not once per rank
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-6"]  # save_total_limit=2
    for ckpt in out.glob("checkpoint-*"):
        names = {p.name for p in ckpt.iterdir()}
        assert {"rng_state_0.pth", "rng_state_1.pth", "model.safetensors", "trainer_state.json"} <= names
        assert "rng_state.pth" not in names
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], "temporary folders left behind"


def test_nan_loss_on_one_rank_skips_the_step_on_every_rank(runs):
    """A NaN loss on rank 1 only (finite gradients) makes both ranks skip that step, so weights stay equal."""
    r0, r1 = runs["nan"]["ranks"]
    assert r1["skip_warnings"] == ["skipping optimizer step 3: loss is nan"]
    assert r0["skip_warnings"] == ["skipping optimizer step 3: the loss or gradient norm of another rank is not finite"]
    assert r0["weights_checksum"] == r1["weights_checksum"]


def test_eval_set_too_small_for_every_rank_is_a_clear_error(runs):
    """12 eval rows at eval batch 8 on 2 ranks (drop_last) leave rank 1 no batch: both ranks say so."""
    want = ("eval_dataset has 12 rows: not one batch of 8 per rank on 2 ranks; lower per_device_eval_batch_size")
    assert [r["error"] for r in runs["small_eval"]["ranks"]] == [want, want]
