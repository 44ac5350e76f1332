"""tinyst: a small, readable re-implementation of Sentence Transformers v3 training.

Read in this order: models/bert.py, models/mpnet.py, models/transformer.py, models/pooling.py,
sentence_transformer.py, encode.py, losses/, sampler.py, the trainer.
"""
__version__ = "0.1.0"

from tinyst import models, util  # noqa: F401,E402
from tinyst.sentence_transformer import SentenceTransformer  # noqa: F401,E402
from tinyst.datasets import Dataset, DatasetDict, load_dataset  # noqa: F401,E402
