"""In-batch-negative losses, their Cached twins, MegaBatchMargin, ContrastiveTension and Matryoshka:
value and parameter gradients against sentence-transformers 3.4.1 on real STSb / SICK / MSRP text
(shared L3 model, tiny random BERT / MPNet), GradCache equivalences with dropout on, input checks.

Gradient comparison: per parameter tensor, ||g_tinyst - g_st|| / ||g_st||, except that tensors whose
true gradient is ~0 (attention key biases: softmax ignores a per-row shift) are measured against
1e-3 of the whole gradient's norm instead of their own float-noise-sized norm.
"""
import json
import random
import shutil
import warnings

import pytest
import torch

import tinyst
from tinyst.losses.cached import split
from tinyst.losses.cached_gist_embed import CachedGISTEmbedLoss
from tinyst.losses.cached_multiple_negatives_ranking import CachedMultipleNegativesRankingLoss
from tinyst.losses.cached_multiple_negatives_symmetric_ranking import CachedMultipleNegativesSymmetricRankingLoss
from tinyst.losses.contrastive_tension import ContrastiveTensionLossInBatchNegatives
from tinyst.losses.gist_embed import GISTEmbedLoss
from tinyst.losses.matryoshka import MatryoshkaLoss
from tinyst.losses.mega_batch_margin import MegaBatchMarginLoss
from tinyst.losses.multiple_negatives_ranking import MultipleNegativesRankingLoss
from tinyst.losses.multiple_negatives_symmetric_ranking import MultipleNegativesSymmetricRankingLoss
from tinyst.models.bert import expand_key_table
from tinyst.models.weights import KEY_TABLES
from tiny_models import make_tiny_model_dir

st = pytest.importorskip("sentence_transformers")
stl = st.losses
warnings.filterwarnings("ignore", message=".*pooler.*")
TOL = 1e-5


# -- data: real text from ../shared ------------------------------------------------------------------
def read_tsv(path, skip_header=False):
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    return [line.split("\t") for line in lines[1 if skip_header else 0 :]]


@pytest.fixture(scope="module")
def stsb(data_dir):
    """(sentence1, sentence2, score/5) rows of STSb dev."""
    return [(r[5], r[6], float(r[4]) / 5) for r in read_tsv(data_dir / "stsb" / "sts-dev.csv")]


@pytest.fixture(scope="module")
def sick_triplets(data_dir):
    """(anchor, entailed, contradicted) triplets from all SICK splits."""
    ent, con = {}, {}
    for split_file in ("SICK_train.txt", "SICK_trial.txt", "SICK_test_annotated.txt"):
        for r in read_tsv(data_dir / "sick" / split_file, skip_header=True):
            {"ENTAILMENT": ent, "CONTRADICTION": con}.get(r[4], {}).setdefault(r[1], r[2])
    return [(a, ent[a], con[a]) for a in ent if a in con]


@pytest.fixture(scope="module")
def msrp_pairs(data_dir):
    """Paraphrase pairs (quality 1) from MSRP train."""
    return [(r[3], r[4]) for r in read_tsv(data_dir / "msrp" / "msr-para-train.tsv", skip_header=True) if r[0] == "1"]


def columns(rows, n, start=0, k=None):
    """Rows -> list of text columns (first k fields), n rows from `start`."""
    rows = rows[start : start + n]
    k = k or len(rows[0])
    return [[r[i] for r in rows] for i in range(k)]


# -- models ---------------------------------------------------------------------------------------------
# name -> (arch, seed, dropout) for the tiny random models; "l3" / "l3-nodrop" are the shared real model.
# "<name>-guide" is a second, independent load of <name>'s folder (same vocabulary: no re-tokenizing).
TINY = {"bert": ("bert", 3, 0.0), "mpnet": ("mpnet", 3, 0.0), "bert-drop": ("bert", 5, 0.1)}
SLOW = pytest.mark.slow  # real-model (L3) tests: CI runs them, a plain `pytest` skips them


def load_pair(path):
    return st.SentenceTransformer(str(path), device="cpu").eval(), tinyst.SentenceTransformer(str(path), device="cpu").eval()


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """zoo(name, dtype) -> (ST model, tinyst model) loaded from the same folder, cached per module."""
    from conftest import MODELS_DIR

    cache, paths, root = {}, {}, tmp_path_factory.mktemp("zoo")

    def folder(name):
        if name not in paths:
            if name.startswith("l3"):
                path = MODELS_DIR / "paraphrase-MiniLM-L3-v2"
                if not path.is_dir():
                    pytest.skip(f"shared model not found at {path}")
                if name == "l3-nodrop":  # dropout 0: train mode without randomness (ST's MegaBatchMargin forces train)
                    path = shutil.copytree(path, root / "l3-nodrop", dirs_exist_ok=True)
                    cfg = json.loads((path / "config.json").read_text())
                    cfg.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
                    (path / "config.json").write_text(json.dumps(cfg))
            else:
                arch, seed, p = TINY[name]
                path = make_tiny_model_dir(root, arch, seed=seed, hidden_dropout_prob=p, attention_probs_dropout_prob=p)
            paths[name] = path
        return paths[name]

    def get(name, dtype=torch.float32):
        if (name, dtype) not in cache:
            cache[name, dtype] = tuple(m.to(dtype) for m in load_pair(folder(name.removesuffix("-guide"))))
        return cache[name, dtype]

    return get


# -- comparison helpers -----------------------------------------------------------------------------
def hub_name(model, name):
    """tinyst parameter name -> the ST/HF name of the same tensor."""
    prefix = "0.auto_model."
    if not name.startswith(prefix) or not hasattr(model[0], "model_type"):
        return name
    enc = model[0].auto_model
    inverse = {ours: hub for hub, ours in expand_key_table(KEY_TABLES[enc.model_type], enc.config.num_hidden_layers).items()}
    module, _, leaf = name[len(prefix) :].rpartition(".")
    return f"{prefix}{inverse[module]}.{leaf}"


def grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def grad_rel(g_ts: dict, g_st: dict) -> float:
    """Worst per-tensor relative gradient difference (see the module docstring for the floor)."""
    assert g_ts and len(g_ts) == len(g_st), (len(g_ts), len(g_st))
    total = torch.sqrt(sum((g.double() ** 2).sum() for g in g_st.values()))
    worst = 0.0
    for name, g in g_ts.items():
        ref = g_st[name].double()
        worst = max(worst, ((g.double() - ref).norm() / torch.clamp(ref.norm(), min=1e-3 * total)).item())
    return worst


def run(loss, models, cols, labels=None):
    """loss(features, labels).backward() from zero grads -> (value, {model index: grads})."""
    for m in models:
        m.zero_grad(set_to_none=True)
    features = [models[0].tokenize(c) for c in cols]
    value = loss(features, labels)
    value.backward()
    return value.item(), [grads(m) for m in models]


def compare(st_loss, ts_loss, st_models, ts_models, cols, labels=None, tol=TOL):
    """Run both losses on the same texts; assert value and gradients within tol; return the diffs."""
    v_st, g_st = run(st_loss, st_models, cols, labels)
    v_ts, g_ts = run(ts_loss, ts_models, cols, labels)
    value_rel = abs(v_ts - v_st) / max(abs(v_st), 1e-12)
    worst = max(grad_rel({hub_name(tm, n): g for n, g in gt.items()}, gs)
                for tm, gt, gs in zip(ts_models, g_ts, g_st))
    assert value_rel <= tol and worst <= tol, (v_st, v_ts, value_rel, worst)
    return value_rel, worst


# -- parity with ST 3.4.1 -------------------------------------------------------------------------
MODELS = ["bert", "mpnet", pytest.param("l3", marks=SLOW)]
MODEL_PLUS_GUIDES = [("bert", "bert-guide"), ("bert", "mpnet"), pytest.param("l3", "l3-guide", marks=SLOW),
                     pytest.param("l3", "mpnet", marks=SLOW)]


def dim(model) -> int:
    return model.get_sentence_embedding_dimension()


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("data", ["stsb", "sick", "msrp", "sick-dot"])
def test_mnrl_parity(zoo, name, data, stsb, sick_triplets, msrp_pairs):
    """MNRL on pairs / triplets (cosine) and with dot-product, scale 1: value and grads equal ST's."""
    cols = {"stsb": columns(stsb, 12, k=2), "sick": columns(sick_triplets, 12), "msrp": columns(msrp_pairs, 12),
            "sick-dot": columns(sick_triplets, 12, start=12)}[data]
    kw = {"similarity_fct": tinyst.util.dot_score, "scale": 1.0} if data.endswith("dot") else {}
    st_kw = {"similarity_fct": st.util.dot_score, "scale": 1.0} if kw else {}
    st_model, ts_model = zoo(name)
    compare(stl.MultipleNegativesRankingLoss(st_model, **st_kw), MultipleNegativesRankingLoss(ts_model, **kw),
            [st_model], [ts_model], cols)


def two_negatives(rows, n, start):
    """(anchor, positive, negative, another row's negative) columns."""
    cols = columns(rows, n, start=start)
    return cols + [cols[2][1:] + cols[2][:1]]


@pytest.mark.parametrize("name", MODELS)
def test_cmnrl_parity(zoo, name, sick_triplets):
    """CachedMNRL (mini_batch_size 5, B 12: a short last mini-batch; two negative columns) equals ST's CachedMNRL."""
    st_model, ts_model = zoo(name)
    compare(stl.CachedMultipleNegativesRankingLoss(st_model, mini_batch_size=5),
            CachedMultipleNegativesRankingLoss(ts_model, mini_batch_size=5), [st_model], [ts_model],
            two_negatives(sick_triplets, 12, start=50))


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("data", ["stsb", "sick"])
def test_mnsrl_parity(zoo, name, data, stsb, sick_triplets):
    """MNSRL (negatives used in the anchor->text direction only) equals ST's."""
    cols = columns(stsb, 12, start=40, k=2) if data == "stsb" else columns(sick_triplets, 12, start=70)
    st_model, ts_model = zoo(name)
    compare(stl.MultipleNegativesSymmetricRankingLoss(st_model), MultipleNegativesSymmetricRankingLoss(ts_model),
            [st_model], [ts_model], cols)


@pytest.mark.parametrize("name", MODELS)
def test_cmnsrl_parity(zoo, name, msrp_pairs):
    """CachedMNSRL equals ST's CachedMNSRL when one mini-batch holds the batch, and ST's plain MNSRL for
    small mini-batches (where ST 3.4.1's cached version ranks positives against their own mini-batch only)."""
    st_model, ts_model = zoo(name)
    cols = columns(msrp_pairs, 12, start=20)
    compare(stl.CachedMultipleNegativesSymmetricRankingLoss(st_model, mini_batch_size=16),
            CachedMultipleNegativesSymmetricRankingLoss(ts_model, mini_batch_size=16), [st_model], [ts_model], cols)
    compare(stl.MultipleNegativesSymmetricRankingLoss(st_model),
            CachedMultipleNegativesSymmetricRankingLoss(ts_model, mini_batch_size=5), [st_model], [ts_model], cols)


# GIST divides cosines by temperature 0.01: on a well-trained model its fp32 value carries ~1e-5..4e-5
# relative float noise in ST itself (measured against the same embeddings in fp64), so the GIST parity
# runs are in float64, where the math is checked to 1e-5 with no noise in the way.
@pytest.mark.parametrize("name,guide", MODEL_PLUS_GUIDES)
@pytest.mark.parametrize("data", ["stsb", "sick", "msrp"])
def test_gist_parity(zoo, name, guide, data, stsb, sick_triplets, msrp_pairs):
    """GISTEmbedLoss with a same-vocabulary and a re-tokenizing guide, pairs and triplets, equals ST's (fp64)."""
    (st_model, ts_model), (st_guide, ts_guide) = zoo(name, torch.float64), zoo(guide, torch.float64)
    cols = {"stsb": columns(stsb, 12, start=80, k=2), "sick": columns(sick_triplets, 12, start=90),
            "msrp": columns(msrp_pairs, 12, start=40)}[data]
    ts_loss = GISTEmbedLoss(ts_model, ts_guide)
    assert ts_loss.must_retokenize == (guide == "mpnet") == stl.GISTEmbedLoss(st_model, st_guide).must_retokenize
    compare(stl.GISTEmbedLoss(st_model, st_guide), ts_loss, [st_model], [ts_model], cols)


@pytest.mark.parametrize("name", ["bert", pytest.param("l3", marks=SLOW)])
def test_gist_parity_fp32(zoo, name, sick_triplets):
    """In fp32, GIST stays within the float noise ST itself shows at temperature 0.01 (5e-5)."""
    (st_model, ts_model), (st_guide, ts_guide) = zoo(name), zoo("mpnet")
    compare(stl.GISTEmbedLoss(st_model, st_guide), GISTEmbedLoss(ts_model, ts_guide), [st_model], [ts_model],
            columns(sick_triplets, 12, start=90), tol=5e-5)


@pytest.mark.parametrize("name", ["bert", pytest.param("l3", marks=SLOW)])
@pytest.mark.parametrize("negatives", [1, 2])
def test_cached_gist_parity(zoo, name, negatives, sick_triplets):
    """CachedGISTEmbedLoss (mini_batch_size 5, re-tokenizing guide, 1 or 2 negative columns) equals ST's (fp64)."""
    (st_model, ts_model), (st_guide, ts_guide) = zoo(name, torch.float64), zoo("mpnet", torch.float64)
    cols = columns(sick_triplets, 12, start=110) if negatives == 1 else two_negatives(sick_triplets, 12, 110)
    compare(stl.CachedGISTEmbedLoss(st_model, st_guide, mini_batch_size=5),
            CachedGISTEmbedLoss(ts_model, ts_guide, mini_batch_size=5), [st_model], [ts_model], cols)


@pytest.mark.parametrize("name", ["bert", pytest.param("l3-nodrop", marks=SLOW)])
@pytest.mark.parametrize("mini_batched", [True, False])
def test_mega_batch_margin_parity(zoo, name, stsb, mini_batched):
    """MegaBatchMarginLoss, mini-batched (one mini-batch: ST back-propagates only its last one) and not."""
    st_model, ts_model = zoo(name)
    cols = columns(stsb, 12, start=120, k=2)
    compare(stl.MegaBatchMarginLoss(st_model, use_mini_batched_version=mini_batched, mini_batch_size=16),
            MegaBatchMarginLoss(ts_model, use_mini_batched_version=mini_batched, mini_batch_size=16),
            [st_model], [ts_model], cols)
    assert ts_model.training is False  # ST flips the model to train mode; tinyst restores the mode
    st_model.eval()


@pytest.mark.parametrize("name", ["bert", pytest.param("l3-nodrop", marks=SLOW)])
def test_mega_batch_margin_mini_batches(zoo, name, stsb):
    """With mini-batches of 5, 5 and 2 rows, the gradient is that of sum over mini-batches of each one's mean
    margin loss (hand-derived from full-batch embeddings), and the value is the last mini-batch's, as in ST.
    positive_margin 1: both terms are active even for a random model whose cosines are all ~0.99."""
    st_model, ts_model = zoo(name)
    cols = columns(stsb, 12, start=120, k=2)
    value, (g,) = run(MegaBatchMarginLoss(ts_model, 1.0, mini_batch_size=5), [ts_model], cols)
    v_st, _ = run(stl.MegaBatchMarginLoss(st_model, 1.0, mini_batch_size=5), [st_model], cols)
    st_model.eval()
    assert value == pytest.approx(v_st, rel=TOL)

    ts_model.zero_grad(set_to_none=True)
    a, p = (ts_model(ts_model.tokenize(c))["sentence_embedding"] for c in cols)
    scores = tinyst.util.cos_sim(a, p)  # (12, 12)
    hardest = (scores - 2 * torch.eye(12)).max(dim=1).values
    per_row = torch.relu(1.0 - scores.diagonal()) + torch.relu(hardest - 0.3)  # (12,)
    sum(per_row[b : b + 5].mean() for b in range(0, 12, 5)).backward()
    assert per_row[10:].mean().item() == pytest.approx(value, rel=TOL)
    assert grad_rel(g, grads(ts_model)) <= TOL


@pytest.mark.parametrize("name", MODELS)
def test_contrastive_tension_parity(zoo, name, stsb):
    """ContrastiveTensionLossInBatchNegatives: value and grads of both encoders and of logit_scale equal ST's."""
    st_model, ts_model = zoo(name)
    st_loss, ts_loss = stl.ContrastiveTensionLossInBatchNegatives(st_model), ContrastiveTensionLossInBatchNegatives(ts_model)
    texts = [r[0] for r in stsb[150:162]]
    compare(st_loss, ts_loss, [st_loss.model2, st_loss.model1], [ts_loss.model2, ts_loss.model1], [texts, texts])
    assert ts_loss.logit_scale.grad.item() == pytest.approx(st_loss.logit_scale.grad.item(), rel=TOL)


@pytest.mark.parametrize("name", ["bert", pytest.param("l3", marks=SLOW)])
@pytest.mark.parametrize("inner", ["mnrl", "cosent", "cmnrl", "cmnsrl", "gist", "cgist"])
def test_matryoshka_parity(zoo, name, inner, stsb, sick_triplets):
    """MatryoshkaLoss([D/8, D, D/2], weights) around plain, label-taking, cached and guided losses equals ST's
    (ST patches model.forward or decorates calculate_loss; tinyst shrinks embeddings). In fp64: around a plain
    loss ST shrinks its cached output size after size (normalize(normalize(x[:D])[:D/2])), tinyst shrinks x
    once per size; equal math, but in fp32 the rounding difference reaches ~2e-5 in CoSENT's gradients."""
    (st_model, ts_model), (st_guide, ts_guide) = zoo(name, torch.float64), zoo("mpnet", torch.float64)
    cols, labels = columns(sick_triplets, 12, start=130), None
    if inner == "cosent":
        from tinyst.losses.cosent import CoSENTLoss

        cols, labels = columns(stsb, 12, start=170, k=2), torch.tensor([r[2] for r in stsb[170:182]]).double()
        pair = stl.CoSENTLoss(st_model), CoSENTLoss(ts_model)
    else:
        pair = {
            "mnrl": lambda: (stl.MultipleNegativesRankingLoss(st_model), MultipleNegativesRankingLoss(ts_model)),
            "cmnrl": lambda: (stl.CachedMultipleNegativesRankingLoss(st_model, mini_batch_size=5),
                              CachedMultipleNegativesRankingLoss(ts_model, mini_batch_size=5)),
            "cmnsrl": lambda: (stl.CachedMultipleNegativesSymmetricRankingLoss(st_model, mini_batch_size=16),
                               CachedMultipleNegativesSymmetricRankingLoss(ts_model, mini_batch_size=16)),
            "gist": lambda: (stl.GISTEmbedLoss(st_model, st_guide), GISTEmbedLoss(ts_model, ts_guide)),
            "cgist": lambda: (stl.CachedGISTEmbedLoss(st_model, st_guide, mini_batch_size=5),
                              CachedGISTEmbedLoss(ts_model, ts_guide, mini_batch_size=5)),
        }[inner]()
    D = dim(ts_model)
    dims, weights = [D // 8, D, D // 2], [0.5, 1.0, 2.0]
    compare(stl.MatryoshkaLoss(st_model, pair[0], dims, weights), MatryoshkaLoss(ts_model, pair[1], dims, weights),
            [st_model], [ts_model], cols, labels)


@pytest.mark.parametrize("name", ["bert", pytest.param("l3", marks=SLOW)])
def test_matryoshka_n_dims_per_step(zoo, name, stsb):
    """n_dims_per_step draws the same sizes as ST from Python's random (same seed, same loss). The seed gives
    a largest-first draw: ST 3.4.1 shrinks its cached model output in place, so a draw like [128, 256] raises
    there; tinyst shrinks the original embeddings for every size (fp64, as test_matryoshka_parity)."""
    st_model, ts_model = zoo(name, torch.float64)
    dims = [dim(ts_model) // 2**i for i in range(5)]
    cols = columns(stsb, 10, start=200, k=2)
    random.seed(3)
    st_loss = stl.MatryoshkaLoss(st_model, stl.MultipleNegativesRankingLoss(st_model), dims, n_dims_per_step=2)
    v_st, g_st = run(st_loss, [st_model], cols)
    random.seed(3)
    ts_loss = MatryoshkaLoss(ts_model, MultipleNegativesRankingLoss(ts_model), dims, n_dims_per_step=2)
    v_ts, g_ts = run(ts_loss, [ts_model], cols)
    assert v_ts == pytest.approx(v_st, rel=TOL)
    assert grad_rel({hub_name(ts_model, n): g for n, g in g_ts[0].items()}, g_st[0]) <= TOL


def test_config_dicts_match_st(zoo):
    """get_config_dict gives ST 3.4.1's keys and values (the guide object aside)."""
    (st_model, ts_model), (st_guide, ts_guide) = zoo("bert"), zoo("mpnet")
    pairs = [
        (stl.MultipleNegativesRankingLoss(st_model, scale=10), MultipleNegativesRankingLoss(ts_model, scale=10)),
        (stl.CachedMultipleNegativesRankingLoss(st_model), CachedMultipleNegativesRankingLoss(ts_model)),
        (stl.MultipleNegativesSymmetricRankingLoss(st_model), MultipleNegativesSymmetricRankingLoss(ts_model)),
        (stl.CachedMultipleNegativesSymmetricRankingLoss(st_model, mini_batch_size=8),
         CachedMultipleNegativesSymmetricRankingLoss(ts_model, mini_batch_size=8)),
        (stl.MatryoshkaLoss(st_model, stl.MultipleNegativesRankingLoss(st_model), [8, 32]),
         MatryoshkaLoss(ts_model, MultipleNegativesRankingLoss(ts_model), [8, 32])),
    ]
    for a, b in pairs:
        assert b.get_config_dict() == a.get_config_dict()
    for a, b in [(stl.GISTEmbedLoss(st_model, st_guide, 0.05), GISTEmbedLoss(ts_model, ts_guide, 0.05)),
                 (stl.CachedGISTEmbedLoss(st_model, st_guide), CachedGISTEmbedLoss(ts_model, ts_guide))]:
        sa, sb = a.get_config_dict(), b.get_config_dict()
        assert sa.keys() == sb.keys() and sa["temperature"] == sb["temperature"] and sb["guide"] is ts_guide
    assert MultipleNegativesRankingLoss(ts_model, gather_across_devices=True).get_config_dict()["gather_across_devices"]
    assert GISTEmbedLoss(ts_model, ts_guide, margin=0.1).get_config_dict()["margin"] == 0.1


# -- GradCache equivalences, dropout on ------------------------------------------------------------------
DROPOUT_MODELS = ["bert-drop", pytest.param("l3", marks=SLOW)]


def cached_pairs(model, guide):
    return {
        "cmnrl": (MultipleNegativesRankingLoss(model), lambda m: CachedMultipleNegativesRankingLoss(model, mini_batch_size=m)),
        "cmnsrl": (MultipleNegativesSymmetricRankingLoss(model),
                   lambda m: CachedMultipleNegativesSymmetricRankingLoss(model, mini_batch_size=m)),
        "cgist": (GISTEmbedLoss(model, guide), lambda m: CachedGISTEmbedLoss(model, guide, mini_batch_size=m)),
    }


def seeded(loss, model, cols, seed=123):
    """Value, grads and the RNG state after forward + backward, from a fixed seed (dropout on)."""
    torch.manual_seed(seed)
    value, (g,) = run(loss, [model], cols)
    return value, g, torch.get_rng_state()


@pytest.mark.parametrize("name", DROPOUT_MODELS)
@pytest.mark.parametrize("loss", ["cmnrl", "cmnsrl", "cgist"])
def test_cached_equals_plain_with_dropout(zoo, name, loss, sick_triplets):
    """With dropout on and one mini-batch holding the batch, the cached loss draws the same dropout masks
    as the plain loss: same value, same gradients, and the global RNG ends in the same state."""
    model = zoo(name)[1].train()
    plain, make_cached = cached_pairs(model, zoo("mpnet")[1])[loss]
    cols = columns(sick_triplets, 8, start=210, k=3 if loss != "cmnsrl" else 2)
    v0, g0, rng0 = seeded(plain, model, cols)
    v1, g1, rng1 = seeded(make_cached(8), model, cols)
    v2, _, _ = seeded(plain, model, cols, seed=124)
    model.eval()
    assert abs(v1 - v0) <= TOL * abs(v0) and grad_rel(g1, g0) <= TOL
    assert torch.equal(rng0, rng1)
    assert abs(v2 - v0) > 1e-4 * abs(v0)  # dropout really is on: another seed gives another loss


@pytest.mark.parametrize("name", DROPOUT_MODELS)
@pytest.mark.parametrize("loss", ["cmnrl", "cmnsrl", "cgist"])
def test_cached_replay_reproduces_its_embeddings(zoo, name, loss, sick_triplets):
    """With dropout on and mini_batch_size 3 < B = 8, the cached loss's value and gradient equal those of the
    plain loss computed on embeddings from the same sequence of mini-batch forwards (with a graph): the
    RNG replay gives the backward pass exactly the embeddings the loss was computed on."""
    model = zoo(name)[1].train()
    plain, make_cached = cached_pairs(model, zoo("mpnet")[1])[loss]
    cols = columns(sick_triplets, 8, start=230, k=3 if loss != "cmnsrl" else 2)
    v1, g1, _ = seeded(make_cached(3), model, cols)

    torch.manual_seed(123)
    model.zero_grad(set_to_none=True)
    features = [model.tokenize(c) for c in cols]
    embeddings = [torch.cat([model(mb)["sentence_embedding"] for mb in split(f, 3)]) for f in features]
    context = plain.loss_context(features) if hasattr(plain, "loss_context") else {}
    value = plain.compute_loss_from_embeddings(embeddings, None, **context)
    value.backward()
    model.eval()
    assert abs(v1 - value.item()) <= TOL * abs(value.item()) and grad_rel(g1, grads(model)) <= TOL


def test_cached_scaled_backward_and_no_grad(zoo, sick_triplets):
    """The replay honours the caller's scaling (0.5 * loss gives half the gradient); under no_grad the cached
    loss just returns the plain loss's value."""
    model = zoo("bert")[1]
    cols = columns(sick_triplets, 8, start=250)
    plain, cached = MultipleNegativesRankingLoss(model), CachedMultipleNegativesRankingLoss(model, mini_batch_size=3)
    features = [model.tokenize(c) for c in cols]
    model.zero_grad(set_to_none=True)
    plain(features).backward()
    g0 = grads(model)
    model.zero_grad(set_to_none=True)
    (0.5 * cached(features)).backward()
    assert grad_rel({n: 2 * g for n, g in grads(model).items()}, g0) <= TOL
    with torch.no_grad():
        assert cached(features).item() == pytest.approx(plain(features).item(), rel=TOL)


def test_matryoshka_cached_equals_plain(zoo, sick_triplets):
    """Matryoshka around CachedMNRL (mini_batch_size 3) equals Matryoshka around MNRL."""
    model = zoo("bert")[1]
    cols = columns(sick_triplets, 8, start=270)
    v0, (g0,) = run(MatryoshkaLoss(model, MultipleNegativesRankingLoss(model), [32, 8]), [model], cols)
    v1, (g1,) = run(MatryoshkaLoss(model, CachedMultipleNegativesRankingLoss(model, mini_batch_size=3), [32, 8]),
                    [model], cols)
    assert v1 == pytest.approx(v0, rel=TOL) and grad_rel(g1, g0) <= TOL


# -- hand-derived checks --------------------------------------------------------------------------------
def gist_loop(emb, guide, temperature, strategy, margin, contrast_anchors, contrast_positives):
    """GIST written out one anchor at a time in Python floats."""
    import math

    def cos(u, v):
        return sum(x * y for x, y in zip(u, v)) / (math.hypot(*u) * math.hypot(*v))

    a, p, negs = emb[0], emb[1], emb[2:]
    ga, gp, gnegs = guide[0], guide[1], guide[2:]
    total = 0.0
    for i in range(len(a)):
        bar = cos(ga[i], gp[i])
        bar = bar - margin if strategy == "absolute" else bar * (1 - margin)
        cands = [(cos(a[i], p[j]), cos(ga[i], gp[j]), j == i) for j in range(len(a))]
        if contrast_anchors:
            cands += [(cos(a[i], a[j]), cos(ga[i], ga[j]), False) for j in range(len(a))]
        if contrast_positives:
            cands += [(cos(p[i], p[j]), cos(gp[i], gp[j]), False) for j in range(len(a))]
        for n, gn in zip(negs, gnegs):
            cands += [(cos(a[i], n[j]), cos(ga[i], gn[j]), False) for j in range(len(a))]
        kept = [s / temperature for s, g, own in cands if own or g <= bar]
        total += math.log(sum(math.exp(s) for s in kept)) - cos(a[i], p[i]) / temperature
    return total / len(a)


@pytest.mark.parametrize("strategy,margin,ca,cp", [("absolute", 0.0, True, True), ("absolute", 0.1, False, True),
                                                   ("relative", 0.05, True, False), ("relative", 0.2, False, False)])
def test_gist_margins_match_loop(zoo, strategy, margin, ca, cp):
    """GIST's masking rule (absolute / relative margin, anchor / positive contrasts) equals the written-out loop."""
    model = zoo("bert")[1]
    torch.manual_seed(0)
    base = torch.randn(6, 8)
    emb = [base + 0.5 * torch.randn(6, 8) for _ in range(3)]  # correlated columns: some candidates get dropped
    guide = [e + 0.3 * torch.randn(6, 8) for e in emb]
    loss = GISTEmbedLoss(model, model, temperature=0.1, margin_strategy=strategy, margin=margin,
                         contrast_anchors=ca, contrast_positives=cp)
    got = loss.compute_loss_from_embeddings(emb, None, guide_embeddings=guide).item()
    want = gist_loop([e.tolist() for e in emb], [g.tolist() for g in guide], 0.1, strategy, margin, ca, cp)
    assert got == pytest.approx(want, rel=1e-5)


# -- input checks ---------------------------------------------------------------------------------------
def test_input_checks(zoo):
    """Wrong column counts, unequal columns and bad arguments raise a ValueError/TypeError naming the loss."""
    model = zoo("bert")[1]
    f = model.tokenize(["a b", "c d", "e f"])
    short = model.tokenize(["a b", "c d"])
    cases = [
        (lambda: MultipleNegativesRankingLoss(model)([f]), "MultipleNegativesRankingLoss expects at least 2"),
        (lambda: MultipleNegativesRankingLoss(model)([f, short]), "MultipleNegativesRankingLoss expects every text column to hold the same number of rows"),
        (lambda: MultipleNegativesRankingLoss(model).compute_loss_from_embeddings([torch.ones(0, 3)] * 2), "non-zero"),
        (lambda: CachedMultipleNegativesRankingLoss(model)([f]), "CachedMultipleNegativesRankingLoss expects at least 2"),
        (lambda: MultipleNegativesSymmetricRankingLoss(model)([f, short]), "MultipleNegativesSymmetricRankingLoss"),
        (lambda: GISTEmbedLoss(model, model)([f, f, f, f]), "GISTEmbedLoss expects 2 to 3"),
        (lambda: GISTEmbedLoss(model, model).compute_loss_from_embeddings([torch.ones(2, 3)] * 2), "guide"),
        (lambda: GISTEmbedLoss(model, model, temperature=0), "temperature"),
        (lambda: GISTEmbedLoss(model, model, margin_strategy="max"), "margin_strategy"),
        (lambda: CachedGISTEmbedLoss(model, model, mini_batch_size=0), "mini_batch_size"),
        (lambda: ContrastiveTensionLossInBatchNegatives(model)([f, f, f]), "expects 2 text column"),
        (lambda: MegaBatchMarginLoss(model)([f, f, f]), "MegaBatchMarginLoss expects 2"),
        (lambda: MegaBatchMarginLoss(model)([f, short]), "same number of rows"),
        (lambda: MatryoshkaLoss(model, MultipleNegativesRankingLoss(model), []), "matryoshka_dims"),
        (lambda: MatryoshkaLoss(model, MultipleNegativesRankingLoss(model), [16, 8], [1.0]), "matryoshka_weights"),
        (lambda: MatryoshkaLoss(model, MultipleNegativesRankingLoss(model), [1000])([f, f]), "larger than the embeddings' 32"),
        (lambda: MatryoshkaLoss(model, MegaBatchMarginLoss(model), [8]), "cannot wrap MegaBatchMarginLoss"),
        (lambda: MatryoshkaLoss(model, MultipleNegativesRankingLoss(model), [8])([f]), "MultipleNegativesRankingLoss expects"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()
    with pytest.raises(TypeError, match="GISTEmbedLoss expects a SentenceTransformer as guide"):
        GISTEmbedLoss(model, "BAAI/bge-small")
    with pytest.raises(TypeError, match="MatryoshkaLoss expects a tinyst loss"):
        MatryoshkaLoss(model, torch.nn.MSELoss(), [8])
    assert CachedGISTEmbedLoss(model, model, mini_batch_size=2)([f, f, f, f]).item() > 0  # any number of negatives


def test_contrastive_tension_copy_is_independent(zoo):
    """model1 is a deep copy: it has its own parameters, and both belong to the loss with logit_scale = log(scale)."""
    model = zoo("bert")[1]
    loss = ContrastiveTensionLossInBatchNegatives(model, scale=10)
    assert loss.model2 is model and loss.model1 is not model
    own = {id(p) for p in model.parameters()}
    assert not own & {id(p) for p in loss.model1.parameters()}
    assert loss.logit_scale.item() == pytest.approx(torch.tensor(10.0).log().item())
    assert len(list(loss.parameters())) == 2 * len(own) + 1


def test_cached_replays_autocast(zoo, sick_triplets):
    """Under bf16 autocast (the trainer's AMP) the replay, which runs during backward outside the autocast
    block, re-enters step 1's autocast: every encoder pass runs under bf16 autocast, and the result matches the plain loss
    under the same autocast to bf16 accuracy (the plain graph sums weight gradients in bf16, GradCache in fp32)."""
    model = zoo("bert")[1]
    cols = columns(sick_triplets, 8, start=290)
    seen = []  # the autocast dtype in force at each encoder pass (None: autocast off)
    hook = model[0].register_forward_hook(
        lambda *_: seen.append(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None))
    out = []
    try:
        for loss in (MultipleNegativesRankingLoss(model), CachedMultipleNegativesRankingLoss(model, mini_batch_size=3)):
            model.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                value = loss([model.tokenize(c) for c in cols])
            value.backward()
            out.append((value.item(), grads(model)))
    finally:
        hook.remove()
    assert seen == [torch.bfloat16] * (3 + 2 * 3 * 3)  # plain: 3 columns; cached: 3 x 3 mini-batches, twice
    assert out[1][0] == pytest.approx(out[0][0], rel=1e-2) and grad_rel(out[1][1], out[0][1]) <= 3e-2


def test_gist_guide_runs_in_eval_mode(zoo, sick_triplets):
    """The guide embeds without dropout even when the loss (and so the guide) is in train mode, and keeps its mode."""
    model = zoo("bert")[1]
    guide = zoo("bert-drop")[1].train()
    loss = GISTEmbedLoss(model, guide)
    features = [model.tokenize(c) for c in columns(sick_triplets, 6, start=300)]
    first, second = (loss.loss_context(features)["guide_embeddings"] for _ in range(2))
    assert all(torch.equal(a, b) for a, b in zip(first, second)) and guide.training
    guide.eval()
