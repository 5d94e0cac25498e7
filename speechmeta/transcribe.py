"""`speechmeta transcribe`: text for audio files, with a model and optionally a speaker profile.

For a person's own recordings: no data dir needed. Each file is read (WAV/FLAC, mixed to mono, resampled), turned
into the model's features (its fbank config and CMVN) and decoded greedily, or with the prefix beam search when an
LM or lexicon is given. A model with per-speaker CMVN takes the speaker's statistics from the profile (`speechmeta
adapt` stores them), else pools them over the files given, which are then taken to be one speaker's. A file
longer than 30 s is cut at its pauses into pieces of at most 20 s (speechmeta.data.segment), each decoded alone
(with its own CMVN when the model's is per utterance), and their texts joined.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import torch

from speechmeta.adapt import apply_profile
from speechmeta.data.audio import load_audio
from speechmeta.data.cmvn import accumulate, apply_cmvn
from speechmeta.data.dataset import MAX_FRAMES
from speechmeta.data.fbank import fbank
from speechmeta.data.segment import SEGMENT_MARGIN_S, SEGMENT_OVER_S, pause_segments
from speechmeta.decode import BeamOptions
from speechmeta.model.ctc import greedy_decode
from speechmeta.train import autocast, load_model, resolve_device


def transcribe(model_path: str | os.PathLike, files: list[str | os.PathLike], profile: str | os.PathLike | None = None,
               device: str = "cpu", lm_path: Path | None = None, lexicon_path: Path | None = None,
               lm_weight: float = 0.5, word_bonus: float = 0.0, beam_size: int = 10,
               segment_over: float = SEGMENT_OVER_S, segment_margin: float = SEGMENT_MARGIN_S
               ) -> list[tuple[str, str]]:
    """(file, text) for each file, in order. A file longer than `segment_over` seconds is cut at its pauses
    (`pause_segments`, each piece keeping `segment_margin` seconds of quiet around its speech) and its pieces'
    texts joined; `math.inf`: every file in one pass."""
    dev = resolve_device(device)
    model, tokenizer, cfg, state = load_model(model_path, str(dev))
    info = apply_profile(model, model_path, profile) if profile is not None else {}
    model.eval()
    stats = state.get("cmvn_global")
    stats = stats.numpy() if stats is not None else None
    if cfg.cmvn == "speaker":
        stats = np.array(info["cmvn_stats"]) if "cmvn_stats" in info else None
    search = None
    if lm_path or lexicon_path:
        search = BeamOptions(lm_path, lexicon_path, lm_weight, word_bonus, beam_size).search(tokenizer)
    rate = cfg.fbank.sample_rate
    raw: dict = {}  # file -> features of each piece (one piece: the whole file)
    for path in files:
        samples = load_audio(path, rate, utt=Path(path).stem)
        spans = pause_segments(samples, rate, margin=segment_margin) if len(samples) > segment_over * rate else [
            (0, len(samples))]
        raw[path] = [fbank(samples[a:b], cfg.fbank) for a, b in spans]
    if cfg.cmvn == "speaker" and stats is None:
        for feats in itertools.chain(*raw.values()):
            stats = accumulate(stats, feats)
    out = []
    for path in files:
        pieces = raw[path]
        texts = []
        for feats in pieces:
            feats = apply_cmvn(feats, cfg.cmvn, stats)
            if feats.shape[0] < 7:  # the conv subsampling needs 7 frames for one output frame
                if len(pieces) > 1:
                    continue  # a click between pauses
                raise ValueError(f"{path}: too short to transcribe ({feats.shape[0]} frames of "
                                 f"{cfg.fbank.frame_shift_ms:g} ms)")
            if feats.shape[0] > MAX_FRAMES:
                raise ValueError(f"{path}: too long to transcribe in one pass ({feats.shape[0]} frames of "
                                 f"{cfg.fbank.frame_shift_ms:g} ms, at most {MAX_FRAMES}): let it be cut at its "
                                 "pauses (--segment-over)")
            x = torch.from_numpy(feats).unsqueeze(0).to(dev)
            with torch.no_grad(), autocast(dev):
                log_probs, lens = model(x, torch.tensor([x.shape[1]], device=dev))
            log_probs = log_probs.float()
            if search is None:
                texts.append(tokenizer.decode(greedy_decode(log_probs, lens)[0]))
            else:
                texts.append(search.decode(log_probs[0, : int(lens[0])].cpu().numpy()))
        out.append((str(path), " ".join(t for t in texts if t)))
    return out
