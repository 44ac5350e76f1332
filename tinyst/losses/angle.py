"""AnglELoss: CoSENTLoss with the AnglE similarity, which optimises angles in complex space.

Each embedding is read as a complex vector (first half real part, second half imaginary part);
the similarity is the size of their normalised complex quotient (`util.pairwise_angle_sim`).
Unlike cosine, its gradient does not vanish near similarity +-1 (the saturation zones).

    loss = log(1 + sum_{(i, j): y_i < y_j} exp(scale * (angle(u_i, v_i) - angle(u_j, v_j))))

Inputs
    | texts                      | labels                             |
    |----------------------------|------------------------------------|
    | (sentence_A, sentence_B)   | float similarity score (any range) |

Shapes: embeddings = [u, v], each (B, D) with D even; labels (B,).
Batch-size sensitive: yes, as CoSENTLoss (pairs of rows within a batch).
Recommended sampler: DefaultBatchSampler (BATCH_SAMPLER).
sentence-transformers v3: losses.AnglELoss (same defaults).
Reference: Li & Li, "AnglE-optimized Text Embeddings" (2023), https://arxiv.org/abs/2309.12871
Not included: nothing.
"""
from tinyst import util
from tinyst.losses.cosent import CoSENTLoss


class AnglELoss(CoSENTLoss):
    citation = """@misc{li2023angleoptimized,
    title={AnglE-optimized Text Embeddings}, author={Xianming Li and Jing Li},
    year={2023}, eprint={2309.12871}, archivePrefix={arXiv},
}"""

    def __init__(self, model, scale: float = 20.0):
        super().__init__(model, scale, similarity_fct=util.pairwise_angle_sim)

    def compute_loss_from_embeddings(self, embeddings, labels):
        if embeddings[0].shape[-1] % 2:
            raise ValueError(f"AnglELoss needs an even embedding dimension, got {embeddings[0].shape[-1]}")
        return super().compute_loss_from_embeddings(embeddings, labels)
