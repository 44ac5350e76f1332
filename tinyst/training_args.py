"""Training arguments: `SentenceTransformerTrainingArguments` and the sampler choices.

Mirrors `sentence_transformers/training_args.py` v3.4: `BatchSamplers` and `MultiDatasetBatchSamplers`
are `str` enums, so `BatchSamplers("no_duplicates")` and `args.batch_sampler == "no_duplicates"` both work.
The arguments are one flat dataclass with ST's fields and the HF TrainingArguments fields that matter,
at HF's defaults (transformers 4.x, the ST v3 era); contradictory settings fail at construction.
Not included: hub pushing, DeepSpeed/FSDP, torch.compile flags, hyper-parameter search.
"""
import math
from dataclasses import asdict, dataclass
from enum import Enum

SCHEDULES = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup")



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


STRATEGIES = ("no", "steps", "epoch")


@dataclass
class SentenceTransformerTrainingArguments:
    output_dir: str = "tmp_trainer"
    num_train_epochs: float = 3.0
    max_steps: int = -1
    per_device_train_batch_size: int = 8
    per_device_eval_batch_size: int = 8
    learning_rate: float = 5e-5
    lr_scheduler_type: str = "linear"
    warmup_ratio: float = 0.0
    warmup_steps: int = 0
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    gradient_accumulation_steps: int = 1
    seed: int = 42
    fp16: bool = False
    bf16: bool = False
    eval_strategy: str = "no"
    eval_steps: float | None = None
    eval_on_start: bool = False
    save_strategy: str = "steps"
    save_steps: float = 500
    save_total_limit: int | None = None
    logging_strategy: str = "steps"
    logging_steps: float = 500
    logging_first_step: bool = False
    load_best_model_at_end: bool = False
    metric_for_best_model: str | None = None
    greater_is_better: bool | None = None
    dataloader_drop_last: bool = False
    dataloader_num_workers: int = 0
    batch_sampler: str = "batch_sampler"
    multi_dataset_batch_sampler: str = "proportional"
    prompts: object = None
    run_name: str | None = None
    report_to: object = "none"
    gradient_checkpointing: bool = False
    use_cpu: bool = False
    ddp_timeout: int = 1800  # seconds a rank waits for the others (init_process_group's timeout)
    disable_tqdm: bool = False
    nan_loss: str = "raise"  # tinyst: "raise" stops with the step named, "skip" drops that optimizer step

    def __post_init__(self):
        self.batch_sampler = BatchSamplers(self.batch_sampler)
        self.multi_dataset_batch_sampler = MultiDatasetBatchSamplers(self.multi_dataset_batch_sampler)
        for name in ("eval_strategy", "logging_strategy"):
            if getattr(self, name) not in STRATEGIES:
                raise ValueError(f"{name} must be one of {STRATEGIES}, got {getattr(self, name)!r}")
        if self.save_strategy not in STRATEGIES + ("best",):
            raise ValueError(f"save_strategy must be one of {STRATEGIES + ('best',)}, got {self.save_strategy!r}")
        if self.lr_scheduler_type not in SCHEDULES:
            raise ValueError(f"lr_scheduler_type must be one of {SCHEDULES}, got {self.lr_scheduler_type!r}")
        if self.nan_loss not in ("raise", "skip"):
            raise ValueError(f"nan_loss must be 'raise' or 'skip', got {self.nan_loss!r}")
        positive = {"learning_rate": self.learning_rate, "per_device_train_batch_size": self.per_device_train_batch_size,
                    "per_device_eval_batch_size": self.per_device_eval_batch_size,
                    "gradient_accumulation_steps": self.gradient_accumulation_steps}
        for name, value in positive.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
            if not isinstance(getattr(self, name), int):
                raise ValueError(f"{name} must be an int, got {getattr(self, name)!r}")
        if self.max_steps <= 0 and not self.num_train_epochs > 0:
            raise ValueError(f"num_train_epochs must be > 0 when max_steps is not set, got {self.num_train_epochs}")
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an int >= 0, got {self.warmup_steps!r}")
        if not 0.0 <= self.warmup_ratio <= 1.0:
            raise ValueError(f"warmup_ratio must be in [0, 1], got {self.warmup_ratio}")
        if self.fp16 and self.bf16:
            raise ValueError("fp16 and bf16 are both set; choose one")
        for name in ("logging_steps", "save_steps") + (("eval_steps",) if self.eval_steps is not None else ()):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0 (an int, or a float < 1 as a fraction of training), "
                                 f"got {getattr(self, name)!r}")
        if self.eval_steps is None:
            self.eval_steps = self.logging_steps
        if self.load_best_model_at_end:
            self._check_best_model_settings()
        if self.metric_for_best_model is None and (self.load_best_model_at_end or self.save_strategy == "best"):
            self.metric_for_best_model = "loss"
        if self.greater_is_better is None and self.metric_for_best_model is not None:
            self.greater_is_better = not self.metric_for_best_model.endswith("loss")

    def _check_best_model_settings(self):
        if self.eval_strategy == "no":
            raise ValueError("load_best_model_at_end needs evaluation: eval_strategy is 'no'")
        if self.save_strategy not in (self.eval_strategy, "best"):
            raise ValueError(f"load_best_model_at_end needs save_strategy == eval_strategy, got "
                             f"save_strategy={self.save_strategy!r} and eval_strategy={self.eval_strategy!r}")
        if self.eval_strategy == "steps" and self.save_strategy == "steps":
            save, ev = self.save_steps, self.eval_steps
            if (save < 1) != (ev < 1):  # as HF: a fraction and a step count cannot be checked against each other
                raise ValueError(f"load_best_model_at_end needs save_steps ({save}) and eval_steps ({ev}) both as "
                                 f"step counts or both as fractions of training")
            if round(save * 1_000_000) % round(ev * 1_000_000) != 0:
                raise ValueError(f"load_best_model_at_end needs save_steps ({save}) to be a multiple of "
                                 f"eval_steps ({ev}), so every checkpoint has a metric")

    def steps_from(self, value, total_steps: int) -> int:
        """An *_steps value: an int, or a float < 1 meaning that fraction of training (rounded up)."""
        return math.ceil(value * total_steps) if value < 1 else int(value)

    def to_dict(self) -> dict:
        return {k: (v.value if hasattr(v, "value") else v) for k, v in asdict(self).items()}
