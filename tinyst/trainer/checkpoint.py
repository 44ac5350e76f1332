"""Checkpoints: `checkpoint-N/` = the model in ST's layout + everything needed to resume exactly.

Layout (mirrors HF Trainer + ST 3.4): the model files, `optimizer.pt`, `scheduler.pt`, `scaler.pt`,
`rng_state.pth` (`rng_state_{rank}.pth` under DDP), `trainer_state.json` (log history, best metric,
epoch and batches consumed in it), `training_args.json`. Everything is written into a temporary
folder that is renamed into place, so a kill mid-write leaves the previous checkpoint intact; folders
are also renamed aside before deletion, and hidden leftovers of a killed run are removed on the next
save or resume. Only folders with `trainer_state.json` (written last) count as checkpoints.
All `.pt` files hold only tensors and plain Python values and load with `weights_only=True`.
Not included: `training_args.bin` (a pickle; tinyst writes JSON instead), sharded optimizer states.
"""
import json
import os
import random
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from tinyst import distributed
from tinyst.models.weights import torch_load_safe

STATE_FILE = "trainer_state.json"


def rng_state() -> dict:
    np_state = np.random.get_state()
    state = {"python": random.getstate(), "cpu": torch.get_rng_state(),
             "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(folder: Path, model, optimizer, scheduler, scaler, state: dict, args_dict: dict,
                    extra_params: dict | None = None) -> Path:
    """Write checkpoint `folder` atomically (main rank writes the shared files, every rank its RNG)."""
    folder = Path(folder)
    rank, world = distributed.rank(), distributed.world_size()
    rng_name = f"rng_state_{rank}.pth" if world > 1 else "rng_state.pth"
    if world > 1:  # ranks > 0 write their RNG into a side folder the main rank moves in
        side = folder.parent / f".{folder.name}.rng"
        side.mkdir(parents=True, exist_ok=True)
        torch.save(rng_state(), side / rng_name)
        distributed.barrier()
    if distributed.is_main():
        remove_stale(folder.parent)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
        model.save(tmp, create_model_card=False)
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        torch.save(scaler.state_dict(), tmp / "scaler.pt")
        torch.save(extra_params or {}, tmp / "loss_params.pt")  # parameters the loss owns (not in the model)
        if world > 1:
            for f in (folder.parent / f".{folder.name}.rng").iterdir():
                shutil.move(str(f), tmp / f.name)
            shutil.rmtree(folder.parent / f".{folder.name}.rng", ignore_errors=True)
        else:
            torch.save(rng_state(), tmp / rng_name)
        (tmp / "training_args.json").write_text(json.dumps(args_dict, indent=2, default=str))
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=2))  # written last: marks the folder complete
        old = _hide(folder) if folder.exists() else None  # subtle: a kill mid-rmtree could leave a "complete" husk
        os.replace(tmp, folder)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    distributed.barrier()
    return folder


def read_state(folder: Path) -> dict:
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a complete checkpoint: {STATE_FILE} is missing")
    try:
        state = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is corrupt (not valid JSON): {e}") from None
    for key in ("global_step", "epoch_index", "batches_in_epoch"):
        if not isinstance(state.get(key), int):
            raise ValueError(f"{path} is corrupt: {key!r} is missing or not an int")
    return state


def load_training_state(folder: Path, optimizer, scheduler, scaler) -> dict:
    """Restore optimizer, scheduler, scaler and RNG; returns the loss-owned parameters."""
    folder = Path(folder)

    if distributed.is_main() and not STALE.match(folder.name):  # (a hidden folder named by hand is kept)
        remove_stale(folder.parent)

    def load(name, into=None):
        try:
            obj = torch_load_safe(folder / name)  # weights_only=True: never unpickles code
        except FileNotFoundError:
            raise FileNotFoundError(f"checkpoint {folder} has no {name}") from None
        try:
            return into(obj) if into else obj
        except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as e:
            raise ValueError(f"checkpoint file {folder / name} does not fit this training run: {e!r}") from None

    load("optimizer.pt", optimizer.load_state_dict)
    load("scheduler.pt", scheduler.load_state_dict)
    load("scaler.pt", scaler.load_state_dict)
    rank_file = f"rng_state_{distributed.rank()}.pth"
    load(rank_file if (folder / rank_file).exists() else "rng_state.pth", set_rng_state)
    return load("loss_params.pt")


def list_checkpoints(output_dir: Path) -> list:
    """Complete checkpoints in output_dir, oldest step first."""
    found = []
    for p in Path(output_dir).glob("checkpoint-*"):
        m = re.fullmatch(r"checkpoint-(\d+)", p.name)
        if m and (p / STATE_FILE).is_file():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def rotate_checkpoints(output_dir: Path, limit, keep=None) -> None:
    """Delete the oldest checkpoints beyond `limit`, never the one in `keep` (the best)."""
    if not limit or not distributed.is_main():
        return
    ckpts = list_checkpoints(output_dir)
    keep = Path(keep).resolve() if keep else None
    removable = [p for p in ckpts if p.resolve() != keep]
    excess = len(ckpts) - limit
    for p in removable[: max(0, excess)]:
        shutil.rmtree(_hide(p), ignore_errors=True)  # renamed first: never listed while half deleted


STALE = re.compile(r"\.+checkpoint-\d+\.(tmp|old|del)-")  # our hidden temp names (nested ones from model.save too)


def _hide(folder: Path) -> Path:
    """Atomically rename `folder` to a hidden name that list_checkpoints ignores; returns the new path."""
    hidden = folder.parent / f".{folder.name}.del-{os.getpid()}"
    if hidden.exists():
        shutil.rmtree(hidden)
    os.replace(folder, hidden)
    return hidden


def remove_stale(output_dir: Path) -> None:
    """Delete hidden temp/old folders a killed run left in output_dir (never a listed checkpoint).
    Assumes one training run per output_dir, as HF's Trainer does."""
    if Path(output_dir).is_dir():
        for p in Path(output_dir).iterdir():
            if STALE.match(p.name):
                shutil.rmtree(p, ignore_errors=True)
