"""CachedMultipleNegativesRankingLoss: MultipleNegativesRankingLoss with GradCache.

Same objective, value and gradient as MultipleNegativesRankingLoss,

    loss = mean_i  -log( exp(s * sim(a_i, p_i)) / sum_j exp(s * sim(a_i, c_j)) ),

but the encoder runs `mini_batch_size` rows at a time (twice: once without a graph, once replayed
with the same RNG state during backward), so the batch can be far larger than what fits in memory.

Inputs
    | texts                                          | labels |
    |------------------------------------------------|--------|
    | (anchor, positive)                             | none   |
    | (anchor, positive, negative_1, ..., negative_k) | none   |

Batch-size sensitive: yes; that is the point: big batches (thousands) at small-batch memory.
    About 20-50% slower than the plain loss (two encoder forwards per row).
Recommended sampler: NO_DUPLICATES.
sentence-transformers v3: losses.CachedMultipleNegativesRankingLoss (gather_across_devices is ST >= 5.1).
Reference: Gao et al. 2021, "Scaling Deep Contrastive Learning Batch Size under Memory Limited
    Setup", https://arxiv.org/abs/2101.06983. Mechanics in cached.py.
Not included: the progress bar (show_progress_bar is accepted and ignored).
"""
from tinyst import util
from tinyst.losses.cached import CachedLossMixin
from tinyst.losses.multiple_negatives_ranking import MultipleNegativesRankingLoss

GAO_2021 = """@misc{gao2021scaling,
    title={Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup},
    author={Luyu Gao and Yunyi Zhang and Jiawei Han and Jamie Callan},
    year={2021}, eprint={2101.06983}, archivePrefix={arXiv}, primaryClass={cs.LG}
}"""


class CachedMultipleNegativesRankingLoss(CachedLossMixin, MultipleNegativesRankingLoss):
    citation = GAO_2021

    def __init__(self, model, scale: float = 20.0, similarity_fct=util.cos_sim, mini_batch_size: int = 32,
                 show_progress_bar: bool = False, gather_across_devices: bool = False):
        super().__init__(model, scale, similarity_fct, gather_across_devices)
        self.set_mini_batch_size(mini_batch_size, show_progress_bar)
