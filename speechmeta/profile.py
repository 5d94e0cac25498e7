"""Speaker profiles: the tensors adapted to one speaker, in a safetensors file, plus what made them.

A profile holds only the adapted tensors (LHUC scalers, adapter weights, or every weight for `finetune`) and, in the
safetensors header, metadata: the SHA-256 of the model file it was adapted from, the method, K, steps, rates, the
utterance ids used and, for a model with per-speaker CMVN, the speaker's statistics. safetensors holds tensors and
strings only, so loading a profile cannot run code. A profile is refused on any other model file, and when its
tensors do not match the model's adapted parameters.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from speechmeta.fileio import atomic_open


class ProfileError(ValueError):
    """A profile that cannot be used with this model (wrong base, missing/extra tensors, unreadable)."""


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_profile(path: str | os.PathLike, tensors: dict[str, torch.Tensor], base_sha256: str, info: dict) -> None:
    """Write the adapted `tensors` and `info` (method, k, steps, rates, utts, ...) atomically."""
    metadata = {"format": "speechmeta-profile-1", "base_model_sha256": base_sha256, "info": json.dumps(info)}
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in tensors.items()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as f:
        f.write(save(tensors, metadata=metadata))


def load_profile(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], str, dict]:
    """(tensors, base model SHA-256, info)."""
    path = Path(path)
    if not path.is_file():
        raise ProfileError(f"speaker profile not found: {path}")
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise ProfileError(f"cannot read speaker profile {path}: {e}") from e
    if metadata.get("format") != "speechmeta-profile-1" or "base_model_sha256" not in metadata:
        raise ProfileError(f"{path} is not a speechmeta speaker profile (no profile metadata)")
    return tensors, metadata["base_model_sha256"], json.loads(metadata.get("info", "{}"))


def check_base(path: str | os.PathLike, model_path: str | os.PathLike, base_sha256: str) -> None:
    """Refuse a profile made from another model file."""
    actual = file_sha256(model_path)
    if base_sha256 != actual:
        raise ProfileError(f"speaker profile {path} was adapted from a model with SHA-256 {base_sha256[:16]}..., "
                           f"not from {model_path} ({actual[:16]}...): adapt the speaker again with this model")


def check_tensors(path: str | os.PathLike, model_path: str | os.PathLike, expected: dict[str, torch.Size],
                  tensors: dict[str, torch.Tensor]) -> None:
    """Refuse a profile whose tensors are not exactly the parameters its method adapts (`expected`: name -> shape)."""
    missing, extra = sorted(expected.keys() - tensors.keys()), sorted(tensors.keys() - expected.keys())
    if missing or extra:
        raise ProfileError(f"speaker profile {path} does not fit {model_path}: "
                           f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                           f"extra {extra[:5]}{'...' if len(extra) > 5 else ''}")
    for name in sorted(expected):
        if tuple(tensors[name].shape) != tuple(expected[name]):
            raise ProfileError(f"speaker profile {path} does not fit {model_path}: tensor '{name}' has shape "
                               f"{tuple(tensors[name].shape)}, the model's {tuple(expected[name])}")
