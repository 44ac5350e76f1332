"""AdaptiveLayerLoss: train the earlier layers to give usable embeddings too, so the model can be cut short.

The inner loss runs on the final embeddings, and again on embeddings pooled from the hidden states
of earlier layers (a random `n_layers_per_step` of them each step). A KL term also pulls each earlier
layer's embedding distribution towards the final layer's. One encoder pass gives all layers: the
Transformer module returns every hidden state, and the remaining modules (pooling, Dense, Normalize)
turn layer l's token states into its sentence embedding.

    loss = w_last * inner(e_L)
         + sum_{l in sampled} [ w_prior * inner(e_l) / (1 + l) / n_sampled
                                + w_kl * T * KL(softmax(e_L / T) || softmax(e_l / T)) ]

where l = 0 .. L-2 counts the layers below the last (layer l + 1 of the encoder) and e_l stacks all
text columns of the batch.

Inputs: those of the inner loss (any tinyst loss that works from embeddings).
Batch-size sensitive: as the inner loss.
Recommended sampler: as the inner loss.
Needs model[0] to be the Transformer module (it sets `output_hidden_states` for the pass).
sentence-transformers v3: losses.AdaptiveLayerLoss (same defaults and sampling with Python's `random`;
    ST patches the modules' forward methods to get the layers, tinyst asks for them).
Reference: Li et al., "2D Matryoshka Sentence Embeddings" (2024), https://arxiv.org/abs/2402.14776
Not included: the GradCache memory savings of Cached inner losses (they run on the full batch here, as
    in ST, which warns); inner losses that embed with a second encoder or call backward themselves.
"""
import random
import warnings

import torch
import torch.nn.functional as F

from tinyst.losses.base import EmbeddingLoss
from tinyst.losses.cached import CachedLossMixin
from tinyst.losses.contrastive_tension import ContrastiveTensionLossInBatchNegatives
from tinyst.losses.matryoshka import MatryoshkaLoss

OUTPUT_KEYS = ("token_embeddings", "sentence_embedding", "all_layer_embeddings")


class AdaptiveLayerLoss(EmbeddingLoss):
    citation = """@misc{li20242d,
    title={2D Matryoshka Sentence Embeddings},
    author={Xianming Li and Zongxi Li and Jing Li and Haoran Xie and Qing Li},
    year={2024}, eprint={2402.14776}, archivePrefix={arXiv}, primaryClass={cs.CL},
}"""

    def __init__(self, model, loss, n_layers_per_step: int = 1, last_layer_weight: float = 1.0,
                 prior_layers_weight: float = 1.0, kl_div_weight: float = 1.0, kl_temperature: float = 0.3):
        super().__init__(model)
        from_embeddings = getattr(type(loss), "compute_loss_from_embeddings", None)
        if not isinstance(loss, EmbeddingLoss) or from_embeddings is EmbeddingLoss.compute_loss_from_embeddings:
            raise TypeError(f"AdaptiveLayerLoss expects a tinyst loss that computes from embeddings, "
                            f"got {type(loss).__name__}")
        inner = loss.loss if isinstance(loss, MatryoshkaLoss) else loss
        self_backward = getattr(inner, "use_mini_batched_version", False)  # MegaBatchMargin's mini-batched mode
        if isinstance(inner, ContrastiveTensionLossInBatchNegatives) or self_backward:
            raise ValueError(f"AdaptiveLayerLoss cannot wrap {type(inner).__name__}: it embeds with a second encoder "
                             "or calls backward itself (use MegaBatchMarginLoss(use_mini_batched_version=False))")
        if isinstance(inner, CachedLossMixin):
            warnings.warn(f"AdaptiveLayerLoss runs {type(inner).__name__} on full-batch embeddings: the value is "
                          "right, but without the cache's memory savings", stacklevel=2)
        if not isinstance(n_layers_per_step, int):
            raise ValueError(f"AdaptiveLayerLoss expects n_layers_per_step as an int (<= 0: all), "
                             f"got {n_layers_per_step!r}")
        if not hasattr(self.encoder_modules()[0], "output_hidden_states"):
            raise TypeError("AdaptiveLayerLoss needs model[0] to be a Transformer module (with output_hidden_states)")
        self.loss = loss
        self.n_layers_per_step = n_layers_per_step
        self.last_layer_weight = last_layer_weight
        self.prior_layers_weight = prior_layers_weight
        self.kl_div_weight = kl_div_weight
        self.kl_temperature = kl_temperature
        self.n_inputs, self.label = loss.n_inputs, loss.label

    def encoder_modules(self) -> list:
        return list(getattr(self.model, "module", self.model))  # unwrap DDP to reach the modules

    def check_inputs(self, sentence_features, labels) -> None:
        self.loss.check_inputs(sentence_features, labels)  # the error then names the loss that needs it

    def forward(self, sentence_features, labels=None) -> torch.Tensor:
        self.check_inputs(sentence_features, labels)
        transformer = self.encoder_modules()[0]
        before = transformer.output_hidden_states
        transformer.output_hidden_states = True  # only for this pass
        try:
            outputs = [self.model(f) for f in sentence_features]  # K dicts, each with L+1 hidden states
        finally:
            transformer.output_hidden_states = before
        context = self.loss.loss_context(sentence_features) if hasattr(self.loss, "loss_context") else {}
        final = [o["sentence_embedding"] for o in outputs]  # K x (B, D)
        loss = self.loss.compute_loss_from_embeddings(final, labels, **context) * self.last_layer_weight

        T = self.kl_temperature
        if T > 0:  # the final layer is the teacher; gradient flows through both sides (as ST)
            teacher = F.softmax(torch.cat(final).float() / T, dim=-1)  # (K * B, D)
        n_layers = len(outputs[0]["all_layer_embeddings"]) - 1  # L; entry 0 is the embedding layer
        layers = range(n_layers - 1)  # the layers below the last
        if 0 < self.n_layers_per_step < len(layers):
            layers = random.sample(layers, self.n_layers_per_step)
        for layer in layers:
            embeddings = [self.pool(o, o["all_layer_embeddings"][layer + 1]) for o in outputs]  # K x (B, D)
            layer_loss = self.loss.compute_loss_from_embeddings(embeddings, labels, **context)
            loss = loss + layer_loss / (1 + layer) / len(layers) * self.prior_layers_weight
            if T > 0:
                student = F.log_softmax(torch.cat(embeddings).float() / T, dim=-1)  # (K * B, D)
                loss = loss + F.kl_div(student, teacher, reduction="batchmean") * T * self.kl_div_weight
        return loss

    def pool(self, output: dict, hidden: torch.Tensor) -> torch.Tensor:
        """Run the modules after the Transformer on one layer's token states (B, T, D) -> (B, D)."""
        features = {k: v for k, v in output.items() if k not in OUTPUT_KEYS}
        features["token_embeddings"] = hidden
        for module in self.encoder_modules()[1:]:
            features = module(features)
        return features["sentence_embedding"]

    def get_config_dict(self) -> dict:
        return {
            "loss": type(self.loss).__name__,
            "n_layers_per_step": self.n_layers_per_step,
            "last_layer_weight": self.last_layer_weight,
            "prior_layers_weight": self.prior_layers_weight,
            "kl_div_weight": self.kl_div_weight,
            "kl_temperature": self.kl_temperature,
        }
