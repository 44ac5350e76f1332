"""The trainer: arguments, batches, the loop, checkpoints and logs (see trainer.py first)."""
from tinyst.trainer.trainer import SentenceTransformerTrainer  # noqa: F401
