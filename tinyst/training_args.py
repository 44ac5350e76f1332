"""Training arguments: for now only the sampler choices.

Mirrors `sentence_transformers/training_args.py` v3.4: `BatchSamplers` and `MultiDatasetBatchSamplers`
are `str` enums, so `BatchSamplers("no_duplicates")` and `args.batch_sampler == "no_duplicates"` both work.
Not included: SentenceTransformerTrainingArguments (added later by the trainer).
"""
from enum import Enum


class _StrEnum(str, Enum):
    @classmethod
    def _missing_(cls, value):
        raise ValueError(f"{value!r} is not a valid {cls.__name__}; choose one of {[m.value for m in cls]}")


class BatchSamplers(_StrEnum):
    """How one dataset's rows are grouped into batches (see `tinyst.sampler`)."""
    BATCH_SAMPLER = "batch_sampler"  # plain shuffled batches (DefaultBatchSampler)
    NO_DUPLICATES = "no_duplicates"  # no text twice in a batch: for in-batch-negative losses
    GROUP_BY_LABEL = "group_by_label"  # >= 2 rows per label in a batch: for Batch*TripletLoss


class MultiDatasetBatchSamplers(_StrEnum):
    """How batches of several datasets are interleaved (every batch comes from one dataset)."""
    ROUND_ROBIN = "round_robin"  # one batch of each dataset in turn, stop when the first runs out
    PROPORTIONAL = "proportional"  # every batch of every dataset, in a random interleaving
