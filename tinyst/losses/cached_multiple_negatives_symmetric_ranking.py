"""CachedMultipleNegativesSymmetricRankingLoss: MultipleNegativesSymmetricRankingLoss with GradCache.

    loss = 1/2 [ CE(s * sim(A, [P; N_1; ...]), i)  +  CE(s * sim(P, A), i) ]

with the encoder run `mini_batch_size` rows at a time (see cached.py), so value and gradient
equal the plain symmetric loss for any mini_batch_size.
subtle: ST 3.4.1's version ranks each positive only against the anchors of its own mini-batch and
    averages mini-batch losses unweighted, so it equals MNSRL only when mini_batch_size >= B;
    later ST (5.x) fixed both; tinyst follows the fix.

Inputs
    | texts                                          | labels |
    |------------------------------------------------|--------|
    | (anchor, positive)                             | none   |
    | (anchor, positive, negative_1, ..., negative_k) | none   |

Batch-size sensitive: yes; big batches at small-batch memory.
Recommended sampler: NO_DUPLICATES.
sentence-transformers v3: losses.CachedMultipleNegativesSymmetricRankingLoss (v3.1+).
Reference: Gao et al. 2021, https://arxiv.org/abs/2101.06983 (GradCache).
Not included: the progress bar (show_progress_bar is accepted and ignored).
"""
from tinyst import util
from tinyst.losses.cached import CachedLossMixin
from tinyst.losses.cached_multiple_negatives_ranking import GAO_2021
from tinyst.losses.multiple_negatives_symmetric_ranking import MultipleNegativesSymmetricRankingLoss


class CachedMultipleNegativesSymmetricRankingLoss(CachedLossMixin, MultipleNegativesSymmetricRankingLoss):
    citation = GAO_2021

    def __init__(self, model, scale: float = 20.0, similarity_fct=util.cos_sim, mini_batch_size: int = 32,
                 show_progress_bar: bool = False, gather_across_devices: bool = False):
        super().__init__(model, scale, similarity_fct, gather_across_devices)
        self.set_mini_batch_size(mini_batch_size, show_progress_bar)

    def get_config_dict(self) -> dict:
        return {**super().get_config_dict(), "mini_batch_size": self.mini_batch_size}
