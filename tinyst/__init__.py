"""tinyst: a small, readable re-implementation of Sentence Transformers v3 training.

Read in this order: models/bert.py, models/mpnet.py, models/transformer.py,
sentence_transformer.py, losses/, sampler.py, trainer/.
"""
__version__ = "0.1.0"

from tinyst import util  # noqa: F401
