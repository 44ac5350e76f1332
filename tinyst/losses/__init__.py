"""tinyst.losses: every sentence-transformers bi-encoder loss, one file each, ST's names and signatures.

A loss is built around the model, `loss = CoSENTLoss(model)`, and called on the tokenized text
columns, `loss(sentence_features, labels)`. The math of each lives in
`compute_loss_from_embeddings(embeddings, labels)` (see base.py), which the wrappers reuse.

In-batch negatives (no label; batch-size sensitive; use NoDuplicatesBatchSampler)
    MultipleNegativesRankingLoss            InfoNCE: each anchor picks its positive among all candidates
    CachedMultipleNegativesRankingLoss      the same value and gradient with GradCache: huge batches, small memory
    MultipleNegativesSymmetricRankingLoss   InfoNCE in both directions (anchor->positive, positive->anchor)
    CachedMultipleNegativesSymmetricRankingLoss  GradCache version of the symmetric loss
    GISTEmbedLoss                           InfoNCE whose negatives a guide model filters for false negatives
    CachedGISTEmbedLoss                     GradCache version of GISTEmbedLoss
    MegaBatchMarginLoss                     margin loss against the hardest in-batch negative
    ContrastiveTensionLossInBatchNegatives  unsupervised: two copies of the model must match a text to itself
Scored pairs
    CoSENTLoss                              rank the pairs of a batch in the order of their gold scores
    AnglELoss                               CoSENT with an angle similarity in complex space
    CosineSimilarityLoss                    regress cos(u, v) onto the gold score (MSE)
    SoftmaxLoss                             linear classifier over [u; v; |u - v|] (SBERT's NLI recipe)
    ContrastiveLoss (+ SiameseDistanceMetric)  pull positive pairs together, push negatives past a margin
    OnlineContrastiveLoss                   ContrastiveLoss on the batch's hard pairs only
Triplets and class labels
    TripletLoss (+ TripletDistanceMetric)   d(a, p) + margin < d(a, n) for (anchor, positive, negative)
    BatchAllTripletLoss                     every valid triplet among labelled sentences of the batch
    BatchHardTripletLoss (+ BatchHardTripletLossDistanceFunction)  hardest positive vs hardest negative
    BatchHardSoftMarginTripletLoss          batch-hard with softplus instead of a margin
    BatchSemiHardTripletLoss                FaceNet's semi-hard negative mining
Distillation
    MSELoss                                 student embedding regresses onto a teacher embedding
    MarginMSELoss                           student score margins match a teacher's (q, p, n) margins
    DistillKLDivLoss                        KL between teacher and student score distributions (ST v5)
Wrappers
    MatryoshkaLoss                          the inner loss on several leading slices of the embedding
    AdaptiveLayerLoss                       the inner loss on the embeddings of earlier layers too
    Matryoshka2dLoss                        AdaptiveLayerLoss around MatryoshkaLoss (2D Matryoshka)

Not included: DenoisingAutoEncoderLoss (needs a transformers decoder) and the legacy
ContrastiveTensionLoss with its data loader.
"""
from tinyst.losses.adaptive_layer import AdaptiveLayerLoss
from tinyst.losses.angle import AnglELoss
from tinyst.losses.base import EmbeddingLoss
from tinyst.losses.batch_all_triplet import BatchAllTripletLoss
from tinyst.losses.batch_hard_soft_margin_triplet import BatchHardSoftMarginTripletLoss
from tinyst.losses.batch_hard_triplet import BatchHardTripletLoss, BatchHardTripletLossDistanceFunction
from tinyst.losses.batch_semi_hard_triplet import BatchSemiHardTripletLoss
from tinyst.losses.cached_gist_embed import CachedGISTEmbedLoss
from tinyst.losses.cached_multiple_negatives_ranking import CachedMultipleNegativesRankingLoss
from tinyst.losses.cached_multiple_negatives_symmetric_ranking import CachedMultipleNegativesSymmetricRankingLoss
from tinyst.losses.contrastive import ContrastiveLoss, SiameseDistanceMetric
from tinyst.losses.contrastive_tension import ContrastiveTensionLossInBatchNegatives
from tinyst.losses.cosent import CoSENTLoss
from tinyst.losses.cosine_similarity import CosineSimilarityLoss
from tinyst.losses.distill_kl_div import DistillKLDivLoss
from tinyst.losses.gist_embed import GISTEmbedLoss
from tinyst.losses.margin_mse import MarginMSELoss
from tinyst.losses.matryoshka import MatryoshkaLoss
from tinyst.losses.matryoshka_2d import Matryoshka2dLoss
from tinyst.losses.mega_batch_margin import MegaBatchMarginLoss
from tinyst.losses.mse import MSELoss
from tinyst.losses.multiple_negatives_ranking import MultipleNegativesRankingLoss
from tinyst.losses.multiple_negatives_symmetric_ranking import MultipleNegativesSymmetricRankingLoss
from tinyst.losses.online_contrastive import OnlineContrastiveLoss
from tinyst.losses.softmax import SoftmaxLoss
from tinyst.losses.triplet import TripletDistanceMetric, TripletLoss
