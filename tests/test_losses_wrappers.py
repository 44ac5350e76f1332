"""AdaptiveLayerLoss and Matryoshka2dLoss: value and gradient parity with sentence-transformers 3.4.1.

Both libraries draw the sampled layers / dims with Python's `random`; the harness replays the same
random state for each, so they train the same layers and sizes.
"""
import copy
import random

import pytest
import torch

import tinyst.losses as TL
from tests.test_losses_pairs import (  # noqa: F401 (load, report_worst: fixtures)
    MODELS, grid, load, report_worst, run_parity, sick_triplets, stsb)

DEEP = ["l3", "bert:4", "mpnet:4"]  # 3-4 layers: 2-3 earlier layers to sample from
WRAPPED = {
    "AdaptiveLayer-CoSENT": lambda L, U, m: L.AdaptiveLayerLoss(m, L.CoSENTLoss(m)),
    "AdaptiveLayer-CoSENT-all-layers": lambda L, U, m: L.AdaptiveLayerLoss(
        m, L.CoSENTLoss(m), n_layers_per_step=-1, last_layer_weight=0.7, prior_layers_weight=1.3, kl_div_weight=0.5,
        kl_temperature=0.8),
    "AdaptiveLayer-CoSENT-no-kl": lambda L, U, m: L.AdaptiveLayerLoss(m, L.CoSENTLoss(m), kl_temperature=0.0),
}


@pytest.mark.parametrize("model,case", grid(WRAPPED, ["AdaptiveLayer-CoSENT-all-layers"], DEEP))
def test_adaptive_layer_matches_st(load, data_dir, model, case):
    """AdaptiveLayerLoss around CoSENT on STSb: value and encoder gradients as ST (layers, KL, weights)."""
    s1, s2, score = stsb(data_dir)
    random.seed(1)
    run_parity(load(model), WRAPPED[case], [s1, s2], score, case, math_check=False)


@pytest.mark.parametrize("model", DEEP)
def test_adaptive_layer_triplets_match_st(load, data_dir, model):
    """AdaptiveLayerLoss around TripletLoss (3 columns, no label): as ST."""
    random.seed(2)
    make = lambda L, U, m: L.AdaptiveLayerLoss(m, L.TripletLoss(m), n_layers_per_step=-1)  # noqa: E731
    run_parity(load(model), make, list(sick_triplets(data_dir)), None, "AdaptiveLayer-Triplet", math_check=False)


def test_adaptive_layer_restores_hidden_states_flag(load, data_dir):
    """The Transformer's output_hidden_states is on only during the loss's forward."""
    ts = load("bert")[1]
    s1, s2, score = stsb(data_dir, 4)
    TL.AdaptiveLayerLoss(ts, TL.CoSENTLoss(ts))([ts.tokenize(s1), ts.tokenize(s2)], score)
    assert ts[0].output_hidden_states is False
    assert "all_layer_embeddings" not in ts(ts.tokenize(s1))


def test_adaptive_layer_refuses_bad_inner_losses(load):
    """Inner losses that are not tinyst embedding losses, or a bad n_layers_per_step: clear errors."""
    ts = load("bert")[1]
    with pytest.raises(TypeError, match="AdaptiveLayerLoss expects a tinyst loss"):
        TL.AdaptiveLayerLoss(ts, torch.nn.MSELoss())
    with pytest.raises(ValueError, match="n_layers_per_step"):
        TL.AdaptiveLayerLoss(ts, TL.CoSENTLoss(ts), n_layers_per_step=1.5)
    loss = TL.AdaptiveLayerLoss(ts, TL.CoSENTLoss(ts))
    with pytest.raises(ValueError, match="CoSENTLoss expects 2 text column"):
        loss([ts.tokenize(["a"])], torch.tensor([1.0]))
    assert (loss.n_inputs, loss.label) == ((2, 2), "float")


def dims(m):
    """Three Matryoshka sizes for the model at hand (384 -> 384, 192, 96; tiny 32 -> 32, 16, 8)."""
    d = m.get_sentence_embedding_dimension()
    return [d // 4, d, d // 2]  # unsorted on purpose: both libraries sort them


def distinct_stsb(data_dir, n=16):
    """n STSb rows whose texts all differ. GIST masks a candidate when its guide similarity is above the
    positive's (strictly); for a repeated text the two are equal up to float rounding, so rounding (which
    moves with memory alignment from run to run) would decide the mask in each library independently."""
    s1, s2, score = stsb(data_dir, 4 * n)
    seen, keep = set(), []
    for i, (a, b) in enumerate(zip(s1, s2)):
        if a not in seen and b not in seen and a != b:
            seen.update((a, b))
            keep.append(i)
    keep = keep[:n]
    return [s1[i] for i in keep], [s2[i] for i in keep], score[keep]


MORE_WRAPPED = {
    "Matryoshka2d-CoSENT": lambda L, U, m: L.Matryoshka2dLoss(m, L.CoSENTLoss(m), dims(m)),
    "Matryoshka2d-CoSENT-all": lambda L, U, m: L.Matryoshka2dLoss(
        m, L.CoSENTLoss(m), dims(m), matryoshka_weights=[0.5, 1.0, 2.0], n_layers_per_step=-1, n_dims_per_step=-1),
    "AdaptiveLayer-MNRL": lambda L, U, m: L.AdaptiveLayerLoss(m, L.MultipleNegativesRankingLoss(m)),
    # the guide must be another model object: ST's patched forwards would catch a guide that is the model itself
    "AdaptiveLayer-GIST": lambda L, U, m: L.AdaptiveLayerLoss(m, L.GISTEmbedLoss(m, copy.deepcopy(m)),
                                                              n_layers_per_step=2),
    # (n_dims_per_step >= 2 crashes in ST 3.4.1 when random.sample yields a small size first)
    "Matryoshka2d-MNRL": lambda L, U, m: L.Matryoshka2dLoss(m, L.MultipleNegativesRankingLoss(m), dims(m)),
}


@pytest.mark.parametrize("model,case", grid(MORE_WRAPPED, ["Matryoshka2d-CoSENT-all", "AdaptiveLayer-GIST"], DEEP))
def test_matryoshka_2d_and_in_batch_inner_losses_match_st(load, data_dir, model, case):
    """Matryoshka2d (sampled layers and sizes) and AdaptiveLayer around in-batch losses: as ST."""
    s1, s2, score = stsb(data_dir) if "GIST" not in case else distinct_stsb(data_dir)
    random.seed(3)
    labels = score if "CoSENT" in case else None
    run_parity(load(model), MORE_WRAPPED[case], [s1, s2], labels, case, math_check=False)


def test_matryoshka_2d_config_matches_st(load):
    """Matryoshka2dLoss.get_config_dict() merges both parts' configs, as ST."""
    import sentence_transformers.losses as SL

    st, ts = load("bert")
    want = SL.Matryoshka2dLoss(st, SL.CoSENTLoss(st), [32, 8, 16]).get_config_dict()
    assert TL.Matryoshka2dLoss(ts, TL.CoSENTLoss(ts), [32, 8, 16]).get_config_dict() == want
    want = SL.AdaptiveLayerLoss(st, SL.CoSENTLoss(st), kl_temperature=2.0).get_config_dict()
    assert TL.AdaptiveLayerLoss(ts, TL.CoSENTLoss(ts), kl_temperature=2.0).get_config_dict() == want


def test_adaptive_layer_warns_or_refuses_special_inner_losses(load):
    """Cached inner losses warn (no memory savings), two-encoder / self-backward losses are refused."""
    ts = load("bert")[1]
    with pytest.warns(UserWarning, match="without the cache's memory savings"):
        TL.AdaptiveLayerLoss(ts, TL.CachedMultipleNegativesRankingLoss(ts))
    with pytest.raises(ValueError, match="cannot wrap ContrastiveTensionLossInBatchNegatives"):
        TL.AdaptiveLayerLoss(ts, TL.ContrastiveTensionLossInBatchNegatives(ts))
    with pytest.raises(ValueError, match="cannot wrap MegaBatchMarginLoss"):
        TL.AdaptiveLayerLoss(ts, TL.MegaBatchMarginLoss(ts))
