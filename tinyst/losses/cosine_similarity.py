"""CosineSimilarityLoss: regress the cosine similarity of each pair onto its gold score.

    loss = loss_fct(cos_score_transformation(cos(u_i, v_i)), y_i)     (default: mean squared error)

Inputs
    | texts                      | labels                                  |
    |----------------------------|-----------------------------------------|
    | (sentence_A, sentence_B)   | float similarity score, usually in [0, 1] |

Shapes: embeddings = [u, v], each (B, D); labels (B,).
Batch-size sensitive: no (each row on its own).
Recommended sampler: DefaultBatchSampler (BATCH_SAMPLER).
sentence-transformers v3: losses.CosineSimilarityLoss (same defaults). CoSENTLoss and AnglELoss
    usually train better on the same data: they only ask for the right order, not exact values.
Reference: Reimers & Gurevych, "Sentence-BERT" (2019), https://arxiv.org/abs/1908.10084
Not included: nothing.
"""
import torch
import torch.nn.functional as F
from torch import nn

from tinyst.losses.base import EmbeddingLoss

SBERT_CITATION = """@inproceedings{reimers-2019-sentence-bert,
    title={Sentence-BERT: Sentence Embeddings using Siamese BERT-Networks},
    author={Reimers, Nils and Gurevych, Iryna}, booktitle={EMNLP 2019},
    year={2019}, url={https://arxiv.org/abs/1908.10084},
}"""


class CosineSimilarityLoss(EmbeddingLoss):
    n_inputs = (2, 2)
    label = "float"
    citation = SBERT_CITATION

    def __init__(self, model, loss_fct: nn.Module = nn.MSELoss(), cos_score_transformation: nn.Module = nn.Identity()):
        super().__init__(model)
        self.loss_fct = loss_fct
        self.cos_score_transformation = cos_score_transformation

    def compute_loss_from_embeddings(self, embeddings, labels) -> torch.Tensor:
        u, v = (e.float() for e in embeddings)  # (B, D) each
        scores = self.cos_score_transformation(F.cosine_similarity(u, v))  # (B,)
        return self.loss_fct(scores, labels.float().view(-1))

    def get_config_dict(self) -> dict:
        cls = type(self.loss_fct)
        return {"loss_fct": f"{cls.__module__}.{cls.__name__}"}
