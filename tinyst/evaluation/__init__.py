"""Evaluators: score a model on held-out data during or after training, with the metric keys,
primary metrics and CSV files of sentence-transformers 3.4 (`sentence_transformers.evaluation`),
computed with numpy only (metrics.py) instead of scipy / scikit-learn.

Each evaluator is called as `evaluator(model, output_path=None, epoch=-1, steps=-1) -> dict`;
`evaluator.primary_metric` names the key used for model selection.
Not included: CrossEncoder evaluators, `from_input_examples` constructors.
"""
from tinyst.evaluation.base import SentenceEvaluator, SequentialEvaluator, SimilarityFunction
from tinyst.evaluation.binary import BinaryClassificationEvaluator
from tinyst.evaluation.information_retrieval import InformationRetrievalEvaluator
from tinyst.evaluation.label_accuracy import LabelAccuracyEvaluator
from tinyst.evaluation.nanobeir import NanoBEIREvaluator
from tinyst.evaluation.paraphrase_mining import ParaphraseMiningEvaluator
from tinyst.evaluation.reranking import RerankingEvaluator
from tinyst.evaluation.similarity import EmbeddingSimilarityEvaluator
from tinyst.evaluation.translation_mse import MSEEvaluator, MSEEvaluatorFromDataFrame, TranslationEvaluator
from tinyst.evaluation.triplet import TripletEvaluator

__all__ = [
    "SentenceEvaluator", "SimilarityFunction", "SequentialEvaluator", "EmbeddingSimilarityEvaluator",
    "BinaryClassificationEvaluator", "TripletEvaluator", "InformationRetrievalEvaluator", "RerankingEvaluator",
    "ParaphraseMiningEvaluator", "TranslationEvaluator", "MSEEvaluator", "MSEEvaluatorFromDataFrame",
    "LabelAccuracyEvaluator", "NanoBEIREvaluator",
]
