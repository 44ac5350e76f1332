"""CoSENTLoss: put the pairs of a batch in the same order as their gold similarity scores.

For every two rows i, j of the batch whose gold scores say y_i < y_j, the model is penalised
when it scores pair i above pair j. Softly counting those inversions gives

    loss = log(1 + sum_{(i, j): y_i < y_j} exp(scale * (sim(u_i, v_i) - sim(u_j, v_j))))

Inputs
    | texts                      | labels                             |
    |----------------------------|------------------------------------|
    | (sentence_A, sentence_B)   | float similarity score (any range) |

Shapes: embeddings = [u, v], each (B, D); labels (B,).
Batch-size sensitive: yes. Only pairs of rows within a batch are compared (B = 1 gives 0), but
    there are no in-batch negatives, so the default sampler is fine.
Recommended sampler: DefaultBatchSampler (BATCH_SAMPLER).
sentence-transformers v3: losses.CoSENTLoss (same defaults; also the trainer's default loss).
Reference: Su, "CoSENT" (2022), https://kexue.fm/archives/8847
Not included: nothing; AnglELoss (angle.py) is this loss with another similarity.
"""
import torch

from tinyst import util
from tinyst.losses.base import EmbeddingLoss


class CoSENTLoss(EmbeddingLoss):
    n_inputs = (2, 2)
    label = "float"
    citation = """@online{kexuefm-8847,
    title={CoSENT: A more efficient sentence vector scheme than Sentence-BERT},
    author={Su Jianlin}, year={2022}, month={Jan}, url={https://kexue.fm/archives/8847},
}"""

    def __init__(self, model, scale: float = 20.0, similarity_fct=util.pairwise_cos_sim):
        super().__init__(model)
        self.scale = scale  # inverse temperature: scale 20 == temperature 0.05
        self.similarity_fct = similarity_fct

    def compute_loss_from_embeddings(self, embeddings, labels) -> torch.Tensor:
        u, v = (e.float() for e in embeddings)  # (B, D) each
        s = self.scale * self.similarity_fct(u, v)  # (B,)
        diff = s[:, None] - s[None, :]  # (B, B): diff[i, j] = s_i - s_j
        inverted = labels[:, None] < labels[None, :]  # (B, B): pair i should score below pair j
        diff = diff.masked_fill(~inverted, float("-inf"))  # exp(-inf) = 0: the pair does not count
        zero = diff.new_zeros(1)  # the "1 +" inside the log, as exp(0)
        return torch.logsumexp(torch.cat([zero, diff.flatten()]), dim=0)

    def get_config_dict(self) -> dict:
        return {"scale": self.scale, "similarity_fct": self.similarity_fct.__name__}
