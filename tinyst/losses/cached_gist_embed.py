"""CachedGISTEmbedLoss: GISTEmbedLoss with GradCache, for batches larger than memory.

Same objective, value and gradient as GISTEmbedLoss,

    loss = CE( [cos(A,P) | cos(A,A) | cos(P,P) | cos(A,N_1) | ...] (guide-masked) / temperature,  i ),

with the model run `mini_batch_size` rows at a time (no-grad pass, then a replay with the same RNG
state during backward; see cached.py) and the guide run in mini-batches of the same size.

Inputs
    | texts                                          | labels |
    |------------------------------------------------|--------|
    | (anchor, positive)                             | none   |
    | (anchor, positive, negative_1, ..., negative_k) | none   |

Batch-size sensitive: yes; big batches at small-batch memory.
Recommended sampler: NO_DUPLICATES.
sentence-transformers v3: losses.CachedGISTEmbedLoss (margin/contrast/gather arguments: ST >= 4.1).
Reference: Solatorio 2024, https://arxiv.org/abs/2402.16829; Gao et al. 2021, https://arxiv.org/abs/2101.06983
Not included: the progress bar (show_progress_bar is accepted and ignored).
"""
from tinyst.losses.cached import CachedLossMixin
from tinyst.losses.gist_embed import GISTEmbedLoss


class CachedGISTEmbedLoss(CachedLossMixin, GISTEmbedLoss):
    n_inputs = (2, None)

    def __init__(self, model, guide, temperature: float = 0.01, mini_batch_size: int = 32,
                 show_progress_bar: bool = False, margin_strategy: str = "absolute", margin: float = 0.0,
                 contrast_anchors: bool = True, contrast_positives: bool = True, gather_across_devices: bool = False):
        super().__init__(model, guide, temperature, margin_strategy, margin, contrast_anchors,
                         contrast_positives, gather_across_devices)
        self.set_mini_batch_size(mini_batch_size, show_progress_bar)
