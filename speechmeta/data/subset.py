"""A data dir restricted to some speakers (Kaldi's `subset_data_dir.sh --spk-list`).

Every per-utterance and per-speaker table is filtered; relative paths in `wav.scp` and `feats.scp` are rewritten
so that they still point at the same files from the new folder; CMVN statistics keep the chosen speakers, and the
global statistics are their sum; the filterbank config the features were computed with is recorded in the new folder
too (`fbank/conf.json`), so that training still refuses them under another config.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from speechmeta.data.cmvn import load_cmvn, save_cmvn
from speechmeta.data.datadir import DataDir, read_table, spk2utt_lines, write_table
from speechmeta.data.feats_store import fbank_config, record_fbank_config
from speechmeta.data.fix_datadir import SPK_FILES, UTT_FILES
from speechmeta.fileio import atomic_write_lines


def relocate(value: str, src: Path, dst: Path) -> str:
    """A relative path of `src` rewritten to point at the same file from `dst` (an absolute one is kept).

    The folders are resolved first: the system resolves `..` after a symbolic link where the link points (a recipe's
    `data/train -> corpus/train` reaches `corpus/wav` by `../wav`), which a purely textual rewrite would miss. The
    file's own name is kept, so a linked audio file stays the link.
    """
    path = Path(value)
    if path.is_absolute():
        return value
    folder = os.path.realpath(src / path.parent)
    return os.path.relpath(os.path.join(folder, path.name), os.path.realpath(dst))


def clear_earlier_output(dst: Path) -> None:
    """Remove from `dst` the optional files and records an earlier subset or combination wrote there: the new one
    may not rewrite them, and a left-over feats.scp or cmvn.npz would describe other utterances (as Kaldi does)."""
    for name in ("segments", "cmvn.npz", "fbank/conf.json", *UTT_FILES, *SPK_FILES):
        (dst / name).unlink(missing_ok=True)


def subset_data_dir(src: str | os.PathLike, dst: str | os.PathLike, spks: list[str]) -> Path:
    """Write the utterances of `spks` from data dir `src` into `dst`."""
    src, dst = Path(src), Path(dst)
    data = DataDir.load(src)
    unknown = sorted(set(spks) - set(data.spk2utt))
    if unknown:
        raise ValueError(f"speaker(s) not in {src}: {', '.join(unknown)}")
    if dst.exists() and dst.resolve() == src.resolve():
        raise ValueError(f"{dst} is the source data dir itself: write the subset to another folder")
    keep_spk = set(spks)
    utts = {u for u in data.utts if data.utt2spk[u] in keep_spk}
    dst.mkdir(parents=True, exist_ok=True)
    clear_earlier_output(dst)

    def table(name: str) -> dict[str, str]:
        return {e.key: e.value for e in read_table(src / name).entries}

    write_table(dst / "text", {u: data.text[u] for u in utts})
    write_table(dst / "utt2spk", {u: data.utt2spk[u] for u in utts})
    atomic_write_lines(dst / "spk2utt", spk2utt_lines({u: data.utt2spk[u] for u in utts}))
    wav = table("wav.scp")
    if data.segments is not None:
        segments = table("segments")
        write_table(dst / "segments", {u: segments[u] for u in utts})
        recordings = {segments[u].split()[0] for u in utts}
        write_table(dst / "wav.scp", {r: relocate(wav[r], src, dst) for r in recordings})
    else:
        write_table(dst / "wav.scp", {u: relocate(wav[u], src, dst) for u in utts})
    for name in UTT_FILES:
        if (src / name).exists():
            rows = {k: v for k, v in table(name).items() if k in utts}
            if name == "feats.scp":
                rows = {k: relocate(v, src, dst) for k, v in rows.items()}
            write_table(dst / name, rows)
    if (dst / "feats.scp").exists() and (config := fbank_config(src)) is not None:
        record_fbank_config(dst, config)
    for name in SPK_FILES:
        if (src / name).exists():
            write_table(dst / name, {k: v for k, v in table(name).items() if k in keep_spk})
    if (src / "cmvn.npz").exists():
        _, spk_stats = load_cmvn(src / "cmvn.npz")
        kept = {s: spk_stats[s] for s in spks if s in spk_stats}
        if kept:
            save_cmvn(dst / "cmvn.npz", np.sum(list(kept.values()), axis=0), kept)
    return dst
