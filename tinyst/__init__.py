"""tinyst: a small, readable re-implementation of Sentence Transformers v3 training.

Read in this order: models/bert.py, models/mpnet.py, models/transformer.py, models/pooling.py,
sentence_transformer.py, encode.py, datasets/, losses/, sampler.py, trainer/trainer.py.
"""
__version__ = "0.1.0"

from tinyst import models, util  # noqa: F401,E402
from tinyst.datasets import Dataset, DatasetDict, load_dataset  # noqa: F401,E402
from tinyst.sentence_transformer import SentenceTransformer  # noqa: F401,E402
from tinyst.training_args import SentenceTransformerTrainingArguments  # noqa: F401,E402
from tinyst.trainer import SentenceTransformerTrainer  # noqa: F401,E402
from tinyst import evaluation, losses  # noqa: F401,E402
from tinyst.model_card import SentenceTransformerModelCardData  # noqa: F401,E402
from tinyst.fit import InputExample  # noqa: F401,E402
