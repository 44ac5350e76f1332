"""Matryoshka2dLoss: 2D Matryoshka, i.e. AdaptiveLayerLoss around MatryoshkaLoss.

Both the depth (earlier layers, AdaptiveLayerLoss) and the width (leading slices of the embedding,
MatryoshkaLoss) are trained at once, so the model can later be cut in both directions. By default
each step samples one earlier layer and one embedding size.

    loss = AdaptiveLayerLoss(MatryoshkaLoss(inner, matryoshka_dims, n_dims_per_step))

Inputs: those of the inner loss.
Batch-size sensitive: as the inner loss.
Recommended sampler: as the inner loss.
sentence-transformers v3: losses.Matryoshka2dLoss (same defaults).
Reference: Li et al., "2D Matryoshka Sentence Embeddings" (2024), https://arxiv.org/abs/2402.14776;
    Kusupati et al., "Matryoshka Representation Learning" (2022), https://arxiv.org/abs/2205.13147
Not included: nothing beyond what its two parts leave out.
"""
from tinyst.losses.adaptive_layer import AdaptiveLayerLoss
from tinyst.losses.matryoshka import MatryoshkaLoss


class Matryoshka2dLoss(AdaptiveLayerLoss):
    citation = AdaptiveLayerLoss.citation

    def __init__(self, model, loss, matryoshka_dims, matryoshka_weights=None, n_layers_per_step: int = 1,
                 n_dims_per_step: int = 1, last_layer_weight: float = 1.0, prior_layers_weight: float = 1.0,
                 kl_div_weight: float = 1.0, kl_temperature: float = 0.3):
        matryoshka = MatryoshkaLoss(model, loss, matryoshka_dims, matryoshka_weights, n_dims_per_step=n_dims_per_step)
        super().__init__(model, matryoshka, n_layers_per_step=n_layers_per_step, last_layer_weight=last_layer_weight,
                         prior_layers_weight=prior_layers_weight, kl_div_weight=kl_div_weight,
                         kl_temperature=kl_temperature)

    def get_config_dict(self) -> dict:
        return {**super().get_config_dict(), **self.loss.get_config_dict()}
