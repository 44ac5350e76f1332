"""The modules a SentenceTransformer is built from (ST's `sentence_transformers.models`)."""
from tinyst.models.pooling import Dense, Normalize, Pooling  # noqa: F401
from tinyst.models.transformer import Transformer  # noqa: F401
