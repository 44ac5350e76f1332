"""AdaptiveLayerLoss and Matryoshka2dLoss: value and gradient parity with sentence-transformers 3.4.1.

Both libraries draw the sampled layers / dims with Python's `random`; the harness replays the same
random state for each, so they train the same layers and sizes.
"""
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
