"""Several data dirs as one (Kaldi's `utils/combine_data.sh`), e.g. real speakers plus synthetic voices for training.

Utterance ids must be unique across the sources (an id found twice is an error naming both dirs); a speaker may
appear in more than one. Relative paths in `wav.scp` and `feats.scp` are rewritten to point at the sources' files from
the new folder, so features are not copied. An optional per-utterance or per-speaker file is combined only when every
source has it, as Kaldi does (the others are reported). CMVN statistics add up: a speaker in two sources gets the sum,
the global statistics are the sum of all. Sources whose features come from different filterbank configs (as
compute-feats recorded them) are refused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from speechmeta.data.cmvn import load_cmvn, save_cmvn
from speechmeta.data.datadir import DataDir, read_table, spk2utt_lines, write_table
from speechmeta.data.feats_store import fbank_config, record_fbank_config
from speechmeta.data.fix_datadir import SPK_FILES, UTT_FILES
from speechmeta.data.subset import clear_earlier_output, relocate
from speechmeta.fileio import atomic_write_lines


def combine_data_dirs(srcs: list[str | os.PathLike], dst: str | os.PathLike) -> list[str]:
    """Write the utterances of all `srcs` into `dst`; returns notes on the files left out."""
    srcs, dst = [Path(s) for s in srcs], Path(dst)
    if len(srcs) < 2:
        raise ValueError("combining needs at least two source data dirs")
    if dst.resolve() in {s.resolve() for s in srcs}:
        raise ValueError(f"{dst} is one of the sources; write the combination to a new folder")
    datas = [DataDir.load(s) for s in srcs]
    if any(d.segments is not None for d in datas):
        raise ValueError("combining data dirs with a segments file is not supported")
    owner: dict[str, Path] = {}
    for src, data in zip(srcs, datas, strict=True):
        for utt in data.utts:
            if utt in owner:
                raise ValueError(f"utterance '{utt}' is in both {owner[utt]} and {src}: utterance ids must be unique "
                                 "(prefix them with the corpus or speaker)")
            owner[utt] = src
    fbanks = {str(s): fbank_config(s) for s in srcs if (s / "feats.scp").exists()}
    fbanks = {s: c for s, c in fbanks.items() if c is not None}  # features made elsewhere may not record theirs
    if len({json.dumps(c, sort_keys=True) for c in fbanks.values()}) > 1:
        listed = "; ".join(f"{s}: {c}" for s, c in fbanks.items())
        raise ValueError(f"the sources' features come from different filterbank configs ({listed}); recompute them "
                         "with one config (speechmeta compute-feats DIR --config CONF)")
    dst.mkdir(parents=True, exist_ok=True)
    clear_earlier_output(dst)
    utt2spk = {u: d.utt2spk[u] for d in datas for u in d.utts}
    write_table(dst / "text", {u: d.text[u] for d in datas for u in d.utts})
    write_table(dst / "utt2spk", utt2spk)
    atomic_write_lines(dst / "spk2utt", spk2utt_lines(utt2spk))
    rows: dict[str, str] = {}
    for src in srcs:
        rows.update({e.key: relocate(e.value, src, dst) for e in read_table(src / "wav.scp").entries})
    write_table(dst / "wav.scp", rows)
    notes = []
    for name in UTT_FILES + SPK_FILES:
        have = [s for s in srcs if (s / name).exists()]
        if not have:
            continue
        if len(have) < len(srcs):
            notes.append(f"{name} left out: only {', '.join(map(str, have))} of the sources have it")
            continue
        rows = {}
        for src in srcs:
            rows.update({e.key: relocate(e.value, src, dst) if name == "feats.scp" else e.value
                         for e in read_table(src / name).entries})
        write_table(dst / name, rows)
    if (dst / "feats.scp").exists() and fbanks:
        record_fbank_config(dst, next(iter(fbanks.values())))
    have = [s for s in srcs if (s / "cmvn.npz").exists()]
    if have and len(have) < len(srcs):
        notes.append(f"cmvn.npz left out: only {', '.join(map(str, have))} of the sources have it")
    elif have:
        spk_stats: dict[str, np.ndarray] = {}
        for src in srcs:
            for spk, stats in load_cmvn(src / "cmvn.npz")[1].items():
                spk_stats[spk] = spk_stats[spk] + stats if spk in spk_stats else stats
        save_cmvn(dst / "cmvn.npz", np.sum(list(spk_stats.values()), axis=0), spk_stats)
    return notes
