"""MSELoss: regress the student's embedding onto a teacher's embedding of the same text.

Used for knowledge distillation and for making a model multilingual: the teacher embeds the source
sentence once (precomputed into the label column), the student learns to reproduce that vector for
the source and for each of its translations.

    loss = mean over rows, columns and dims of (student(text_k)_i - teacher_i)^2

Inputs
    | texts                                    | labels                        |
    |------------------------------------------|-------------------------------|
    | sentence                                 | teacher embedding (list of D) |
    | (source, translation_1, ...)             | teacher embedding of source   |

Shapes: embeddings = K x (B, D); labels (B, D) float, shared by all K columns.
Batch-size sensitive: no (each row on its own).
Recommended sampler: DefaultBatchSampler (BATCH_SAMPLER).
sentence-transformers v3: losses.MSELoss.
Reference: Reimers & Gurevych, "Making Monolingual Sentence Embeddings Multilingual using Knowledge
    Distillation" (2020), https://arxiv.org/abs/2004.09813
Not included: nothing.
"""
import torch
import torch.nn.functional as F

from tinyst.losses.base import EmbeddingLoss


class MSELoss(EmbeddingLoss):
    n_inputs = (1, None)
    label = "vector"
    citation = """@inproceedings{reimers-2020-multilingual-sentence-bert,
    title={Making Monolingual Sentence Embeddings Multilingual using Knowledge Distillation},
    author={Reimers, Nils and Gurevych, Iryna}, booktitle={EMNLP 2020},
    year={2020}, url={https://arxiv.org/abs/2004.09813},
}"""

    def compute_loss_from_embeddings(self, embeddings, labels) -> torch.Tensor:
        student = torch.cat([e.float() for e in embeddings])  # (K * B, D): columns stacked on the batch axis
        if labels.shape != embeddings[0].shape:
            raise ValueError(
                f"MSELoss expects teacher embeddings of shape {tuple(embeddings[0].shape)} (batch, model dim) "
                f"as labels, got {tuple(labels.shape)}"
            )
        teacher = labels.float().repeat(len(embeddings), 1)  # (K * B, D): the same target for every column
        return F.mse_loss(student, teacher)
