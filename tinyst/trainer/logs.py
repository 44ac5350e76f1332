"""Where training logs go: `log_history` (-> trainer_state.json), a JSONL file, a progress line on
stderr (no tqdm), optional TensorBoard event files, and user callbacks.

Callbacks are plain objects with any of on_train_begin / on_log / on_evaluate / on_save /
on_step_end / on_train_end(args, state, control, **kwargs) (transformers' TrainerCallback methods);
a missing method is skipped. `state.global_step` and `state["global_step"]` both read the state;
setting `control.should_training_stop = True` ends training after the current step.
Not included: wandb / mlflow / comet integrations; control fields other than should_training_stop.
"""
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tinyst import distributed


class TrainerState(dict):
    """The loop's state, a JSON-able dict (trainer_state.json) whose keys also read as attributes."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"trainer state has no {name!r}; it has {sorted(self)}") from None

    def __setattr__(self, name, value):
        self[name] = value


@dataclass
class TrainerControl:
    """What a callback may ask of the loop: transformers' TrainerControl fields; tinyst acts on
    should_training_stop only."""

    should_training_stop: bool = False
    should_epoch_stop: bool = False
    should_save: bool = False
    should_evaluate: bool = False
    should_log: bool = False


class Logger:
    def __init__(self, args, callbacks=()):
        self.args = args
        self.callbacks = list(callbacks or [])
        self.control = TrainerControl()
        self.history = []
        self.main = distributed.is_main()
        self.jsonl = Path(args.output_dir) / "log.jsonl"
        self.tb = self._tensorboard() if self.main else None
        self.t0 = time.time()

    def _tensorboard(self):
        report_to = self.args.report_to
        wanted = report_to in ("all", "tensorboard") or (isinstance(report_to, list) and "tensorboard" in report_to)
        if not wanted:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # the optional tensorboard package is not installed
            return None
        return SummaryWriter(log_dir=str(Path(self.args.output_dir) / "runs" / (self.args.run_name or "tinyst")))

    def callback(self, event: str, state, **kwargs) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, event, None)
            if fn is not None:
                fn(self.args, state, control=self.control, **kwargs)  # by keyword: (args, state, **kw) works too

    def log(self, logs: dict, step: int, state) -> None:
        """Record one log entry (main rank writes it) and tell the callbacks."""
        entry = {**logs, "step": step}
        self.history.append(entry)
        if self.main:
            Path(self.args.output_dir).mkdir(parents=True, exist_ok=True)
            with open(self.jsonl, "a") as f:
                f.write(json.dumps(entry) + "\n")
            if self.tb is not None:
                for k, v in logs.items():
                    if isinstance(v, (int, float)) and k not in ("step", "epoch"):
                        self.tb.add_scalar(k, v, step)
        self.callback("on_log", state, logs=entry)

    def progress(self, step: int, total: int, extra: str = "") -> None:
        if not self.main or self.args.disable_tqdm:
            return
        dt = max(time.time() - self.t0, 1e-9)
        eta = (total - step) * dt / max(step, 1)
        end = "\n" if step >= total else ""
        sys.stderr.write(f"\rstep {step}/{total} [{step / dt:.2f} it/s, {dt:.0f}s elapsed, {eta:.0f}s left]{extra}{end}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
