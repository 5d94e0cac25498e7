"""Checkpoints: written atomically, read with `torch.load(weights_only=True)`, averaged over the last N.

A checkpoint is a dict of tensors and plain Python values (no pickled objects), so loading one never runs code: a
file holding a pickled callable is refused with a clear error, as is a truncated or foreign file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from speechmeta.fileio import atomic_open


class CheckpointError(ValueError):
    pass


class _KeepWriteError:
    """A file that remembers its write error: torch.save reports a failed write (a full disk) only as a RuntimeError
    of its zip writer ("unexpected pos"), which would hide the OSError a user can act on."""

    def __init__(self, f):
        self.f, self.error = f, None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = e
            raise

    def flush(self) -> None:
        self.f.flush()


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """torch.save to a temporary file, fsync, rename: a crash or a full disk leaves the previous checkpoint intact
    (a failed write raises its OSError, e.g. ENOSPC)."""
    with atomic_open(path, "wb") as f:
        out = _KeepWriteError(f)
        try:
            torch.save(state, out)
        except RuntimeError:
            if out.error is not None:
                raise out.error from None
            raise


def load_checkpoint(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors come as several types
        text = str(e)
        if "Weights only load failed" in text:  # torch's own text would suggest weights_only=False: never do that
            what = next((line.strip() for line in text.splitlines() if "GLOBAL" in line or "Unsupported" in line),
                        "an object that is not a tensor or a plain value")
            raise CheckpointError(
                f"refusing to load {path}: it holds pickled objects, not only tensors and plain values ({what}). "
                "Checkpoints load with weights_only=True, so a file that could run code is refused; use a "
                "checkpoint written by speechmeta"
            ) from None
        reason = "empty file" if path.stat().st_size == 0 else text.splitlines()[0] if text else type(e).__name__
        raise CheckpointError(f"cannot load {path}: truncated or corrupt ({reason}); copy it again, or use an "
                              "earlier checkpoint") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path} is not a speechmeta checkpoint (no 'model' entry)")
    return state


def checkpoints(exp_dir: str | os.PathLike, pattern: str = r"epoch-(\d+)\.pt") -> list[Path]:
    """Checkpoints in `exp_dir` whose names match `pattern`, ordered by the number in them."""
    regex = re.compile(pattern)
    found = [(int(m.group(1)), p) for p in Path(exp_dir).glob("*.pt") if (m := regex.fullmatch(p.name))]
    return [p for _, p in sorted(found)]


def latest(exp_dir: str | os.PathLike) -> Path | None:
    """The checkpoint with the most training steps (epoch-N.pt or step-N.pt), or None."""
    best, best_step = None, -1
    for p in checkpoints(exp_dir, r"(?:epoch|step)-(\d+)\.pt"):
        step = load_checkpoint(p).get("step", -1)
        if step > best_step:
            best, best_step = p, step
    return best


def average_models(paths: list[Path]) -> dict[str, torch.Tensor]:
    """Element-wise mean of the model weights of `paths` (icefall's and ESPnet's checkpoint averaging)."""
    if not paths:
        raise CheckpointError("no checkpoints to average")
    total: dict[str, torch.Tensor] = {}
    for p in paths:
        for k, v in load_checkpoint(p)["model"].items():
            total[k] = total.get(k, 0) + v.double()
    return {k: (v / len(paths)).float() for k, v in total.items()}
