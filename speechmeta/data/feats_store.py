"""Feature storage: chunks of concatenated frames in `.npy` files, read back memory-mapped through `feats.scp`.

`feats.scp` keeps Kaldi's two columns, `utt file:start:num_frames`, where `file` is relative to the data dir and
holds a float32 (total_frames, D) array. Loading a random utterance touches only its own pages of one mapped file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from speechmeta.data.datadir import read_table
from speechmeta.fileio import atomic_write_text


def fbank_config(data_dir: Path) -> dict | None:
    """The filterbank config of a data dir's features as compute-feats recorded it (fbank/conf.json), or None."""
    conf = data_dir / "fbank" / "conf.json"
    return json.loads(conf.read_text(encoding="utf-8")).get("fbank") if conf.is_file() else None


def record_fbank_config(data_dir: Path, config: dict) -> None:
    """Record `config` for features that live elsewhere (no utterance list: a compute-feats run here starts anew)."""
    atomic_write_text(data_dir / "fbank" / "conf.json", json.dumps({"fbank": config}, indent=1))


def parse_feats_entry(value: str) -> tuple[str, int, int]:
    """(relative file, first frame, number of frames) from a `feats.scp` value."""
    try:
        name, start, num = value.rsplit(":", 2)
        return name, int(start), int(num)
    except ValueError:
        raise ValueError(f"malformed feats.scp entry '{value}', expected 'file.npy:start:num_frames'") from None


class FeatsReader:
    """Random access to a data dir's features: `reader[utt]` is a (T, D) float32 array (a read-only view)."""

    def __init__(self, data_dir: str | os.PathLike):
        self.data_dir = Path(data_dir)
        scp = self.data_dir / "feats.scp"
        if not scp.exists():
            raise FileNotFoundError(f"{scp} not found: run 'speechmeta compute-feats {self.data_dir}' first")
        table = read_table(scp)
        if table.problems:
            raise ValueError(f"{table.problems[0]}")
        self.index = {e.key: parse_feats_entry(e.value) for e in table.entries}
        self._arrays: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, utt: str) -> bool:
        return utt in self.index

    def keys(self) -> list[str]:
        return sorted(self.index)

    def num_frames(self, utt: str) -> int:
        return self.index[utt][2]

    def __getitem__(self, utt: str) -> np.ndarray:
        if utt not in self.index:
            raise KeyError(f"utterance '{utt}' has no features in {self.data_dir / 'feats.scp'}")
        name, start, num = self.index[utt]
        if name not in self._arrays:
            self._arrays[name] = np.load(self.data_dir / name, mmap_mode="r", allow_pickle=False)
        array = self._arrays[name]
        if start + num > array.shape[0]:
            raise ValueError(f"utterance '{utt}': frames {start}..{start + num} beyond the {array.shape[0]} frames of "
                             f"{self.data_dir / name}; recompute features")
        return array[start:start + num]
