"""tinyst.distributed without a process group (no-ops), and with 2 gloo processes: the gather-with-gradient
primitive, reduce_mean, and every gather_across_devices loss against one process holding the union batch.

Workers send back plain lists (tensors through a multiprocessing queue share memory through file
descriptors that vanish with the worker)."""
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

import tinyst
from tinyst import distributed
from tinyst.losses.cached_gist_embed import CachedGISTEmbedLoss
from tinyst.losses.cached_multiple_negatives_ranking import CachedMultipleNegativesRankingLoss
from tinyst.losses.cached_multiple_negatives_symmetric_ranking import CachedMultipleNegativesSymmetricRankingLoss
from tinyst.losses.gist_embed import GISTEmbedLoss
from tinyst.losses.matryoshka import MatryoshkaLoss
from tinyst.losses.multiple_negatives_ranking import MultipleNegativesRankingLoss
from tinyst.losses.multiple_negatives_symmetric_ranking import MultipleNegativesSymmetricRankingLoss

WORLD, B = 2, 4  # 2 ranks with 4 rows each: the union batch has 8

LOSSES = {
    "mnrl": lambda m, g, gather: MultipleNegativesRankingLoss(m, gather_across_devices=gather),
    "cmnrl": lambda m, g, gather: CachedMultipleNegativesRankingLoss(m, mini_batch_size=3, gather_across_devices=gather),
    "mnsrl": lambda m, g, gather: MultipleNegativesSymmetricRankingLoss(m, gather_across_devices=gather),
    "cmnsrl": lambda m, g, gather: CachedMultipleNegativesSymmetricRankingLoss(m, mini_batch_size=3,
                                                                              gather_across_devices=gather),
    "gist": lambda m, g, gather: GISTEmbedLoss(m, g, temperature=0.05, gather_across_devices=gather),
    "cgist": lambda m, g, gather: CachedGISTEmbedLoss(m, g, temperature=0.05, mini_batch_size=3,
                                                      gather_across_devices=gather),
    "matryoshka-cmnrl": lambda m, g, gather: MatryoshkaLoss(
        m, CachedMultipleNegativesRankingLoss(m, mini_batch_size=3, gather_across_devices=gather), [32, 16]),
}


def texts(n_rows: int) -> list[list[str]]:
    """(anchor, positive, negative) columns of distinct short sentences the tiny tokenizer knows."""
    from tiny_models import corpus

    lines = [line.strip() for doc in corpus() for line in doc.splitlines() if len(line.strip()) > 20]
    lines = list(dict.fromkeys(lines))[: 3 * n_rows]
    return [lines[0::3], lines[1::3], lines[2::3]]


def flat_grads(model) -> torch.Tensor:
    return torch.cat([p.grad.flatten() if p.grad is not None else torch.zeros(p.numel()) for p in model.parameters()])


def loss_and_grads(name, model, guide, cols, gather):
    model.zero_grad(set_to_none=True)
    value = LOSSES[name](model, guide, gather)([model.tokenize(c) for c in cols])
    value.backward()
    return value.detach(), flat_grads(model)


class Holder(torch.nn.Module):
    def __init__(self, loss):
        super().__init__()
        self.loss = loss

    def forward(self, features):
        return self.loss(features)


def worker(rank, port, model_dir, guide_dir, cols, queue):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        out = {"rank": distributed.rank(), "world": distributed.world_size(), "main": distributed.is_main(),
               "dist": distributed.is_distributed()}
        # the primitive: y = gather(x) (6, 2); loss_r = sum(y * w_r); dloss/dx on rank r = sum_r' w_r'[rows of r]
        x = (torch.arange(6.0).view(3, 2) + 10 * rank).requires_grad_()
        y = distributed.all_gather_with_grad(x)
        (y * (torch.arange(12.0).view(6, 2) + rank)).sum().backward()
        out["gathered"], out["x_grad"] = y.tolist(), x.grad.tolist()
        out["mean"] = distributed.reduce_mean(torch.tensor(float(rank + 1))).item()
        try:
            distributed.all_gather_with_grad(torch.zeros(3 - rank, 2))
        except ValueError as e:
            out["uneven"] = str(e)
        model = tinyst.SentenceTransformer(model_dir, device="cpu").eval()
        guide = tinyst.SentenceTransformer(guide_dir, device="cpu").eval()
        local = [model.tokenize(c[rank * B : (rank + 1) * B]) for c in cols]
        for name in LOSSES:
            # as the trainer does: DDP around a module holding the loss (which holds the model); DDP averages
            # the parameter gradients over ranks, also for the Cached losses' replayed backward
            ddp = DistributedDataParallel(Holder(LOSSES[name](model, guide, True)), find_unused_parameters=True)
            model.zero_grad(set_to_none=True)
            value = ddp(local)
            value.backward()
            out[name] = (value.item(), flat_grads(model).tolist())
            del ddp
        queue.put(out)
    finally:
        torch.distributed.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """Run `worker` on 2 gloo ranks once; also hand back the single-process inputs."""
    from tiny_models import make_tiny_model_dir

    root = tmp_path_factory.mktemp("ddp")
    model_dir, guide_dir = make_tiny_model_dir(root, "bert", seed=0), make_tiny_model_dir(root, "mpnet", seed=1)
    cols = texts(WORLD * B)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=worker, args=(r, port, str(model_dir), str(guide_dir), cols, queue)) for r in range(WORLD)]
    for p in procs:
        p.start()
    try:
        results = sorted((queue.get(timeout=300) for _ in procs), key=lambda r: r["rank"])
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    return results, model_dir, guide_dir, cols


def test_no_process_group_is_single_process():
    """Without a process group: rank 0 of 1, main, not distributed; gather and reduce_mean are identities."""
    assert (distributed.rank(), distributed.world_size(), distributed.is_main(), distributed.is_distributed()) == (0, 1, True, False)
    x = torch.randn(3, 4, requires_grad=True)
    assert distributed.all_gather_with_grad(x) is x
    assert torch.equal(distributed.reduce_mean(x), x.detach())


def test_gather_primitive(two_ranks):
    """Gathered rows come in rank order; each rank's gradient is the sum over ranks of the weights on its
    rows (hand-derived); reduce_mean averages; uneven row counts raise a ValueError on every rank."""
    results = two_ranks[0]
    want_rows = [[float(10 * r + 2 * i), float(10 * r + 2 * i + 1)] for r in range(WORLD) for i in range(3)]
    for rank, out in enumerate(results):
        assert (out["rank"], out["world"], out["main"], out["dist"]) == (rank, WORLD, rank == 0, True)
        assert out["gathered"] == want_rows
        w = torch.arange(12.0).view(6, 2)[3 * rank : 3 * rank + 3]  # weights on this rank's rows, before "+ r"
        assert torch.equal(torch.tensor(out["x_grad"]), sum(w + r for r in range(WORLD)))
        assert out["mean"] == 1.5
        assert "same number of rows on every rank, got [3, 2]" in out["uneven"]


@pytest.mark.parametrize("name", list(LOSSES))
def test_gathered_loss_equals_union_batch(two_ranks, name):
    """With gather_across_devices under DDP, the mean over ranks of the loss, and the DDP-averaged parameter
    gradient, equal the loss and gradient of one process on the union batch (8 rows, negatives included):
    exact, no world-size factor, Cached losses included."""
    results, model_dir, guide_dir, cols = two_ranks
    model = tinyst.SentenceTransformer(str(model_dir), device="cpu").eval()
    guide = tinyst.SentenceTransformer(str(guide_dir), device="cpu").eval()
    value, grad = loss_and_grads(name, model, guide, cols, gather=False)
    rank_values = [out[name][0] for out in results]
    assert sum(rank_values) / WORLD == pytest.approx(value.item(), rel=1e-5)
    assert abs(rank_values[0] - rank_values[1]) > 1e-6  # the ranks really saw different rows
    for out in results:  # after DDP's averaging every rank holds the same gradient
        ddp = torch.tensor(out[name][1])
        assert ((ddp - grad).norm() / grad.norm()).item() <= 1e-5
