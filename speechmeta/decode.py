"""`speechmeta decode`: hypotheses for a data dir, greedy or prefix beam search with a word n-gram LM and lexicon.

Writes Kaldi-format `hyp.txt` and `ref.txt` (the normalized transcripts) into the output folder, and reports the
real-time factor: decoding wall time (network + search, not model loading) over audio duration.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from speechmeta.adapt import apply_profile
from speechmeta.data.dataset import MAX_FRAMES, length_batches
from speechmeta.data.phone_tokenizer import Tokenizer
from speechmeta.fileio import atomic_write_lines
from speechmeta.lm import NgramLM
from speechmeta.model.beam_search import BeamSearch
from speechmeta.model.ctc import greedy_decode
from speechmeta.train import autocast, load_model, model_data, resolve_device

log = logging.getLogger(__name__)


def read_lexicon(path: str | os.PathLike) -> list[str]:
    """Words of a lexicon (first column; Kaldi lexicon.txt or one word per line), variants like WORD(2) merged."""
    words = set()
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            words.add(line.split()[0].split("(")[0])
    return sorted(words)


@dataclass(frozen=True)
class BeamOptions:
    """Prefix beam search settings: an optional word n-gram LM (speechmeta train-lm) and lexicon, their weights."""

    lm: Path | None = None
    lexicon: Path | None = None
    lm_weight: float = 0.5
    word_bonus: float = 0.0
    beam_size: int = 10

    def search(self, tokenizer: Tokenizer) -> BeamSearch:
        """The search for a model's units: the lexicon's words spelled in them (a phone model always searches its
        own lexicon; --lexicon then narrows its words)."""
        words = read_lexicon(self.lexicon) if self.lexicon else None
        return BeamSearch(tokenizer.units, beam_size=self.beam_size, lm_weight=self.lm_weight,
                          word_bonus=self.word_bonus, lm=NgramLM.load(self.lm) if self.lm else None,
                          spellings=tokenizer.spellings(words))

    def describe(self) -> dict:
        """What a result decoded with these settings depends on (kept results are reused only if it matches)."""
        return {"method": "beam", "lm": str(self.lm) if self.lm else None,
                "lexicon": str(self.lexicon) if self.lexicon else None, "lm_weight": self.lm_weight,
                "word_bonus": self.word_bonus, "beam_size": self.beam_size}


GREEDY = {"method": "greedy"}


def decode(model_path: Path, data_dir: Path, out_dir: Path, method: str = "greedy", beam_size: int = 10,
           lm_path: Path | None = None, lm_weight: float = 0.5, word_bonus: float = 0.0,
           lexicon_path: Path | None = None, device: str = "cpu", max_frames: int = MAX_FRAMES,
           profile: Path | None = None) -> dict:
    """Decode every utterance with features in `data_dir` (with a speaker profile's tensors loaded, if given);
    returns counts, timings and the RTF."""
    if method not in ("greedy", "beam"):
        raise ValueError(f"decoding method must be greedy or beam, not '{method}'")
    model, tokenizer, cfg, state = load_model(model_path, device)
    dev = resolve_device(device)
    if profile is not None:
        info = apply_profile(model, model_path, profile)
        log.info("speaker profile %s: %s adaptation to %s from %d utterance(s)", profile, info.get("method"),
                 info.get("spk"), info.get("k", 0))
    data = model_data(data_dir, tokenizer, cfg, state, need_text=False)
    data.check_length(data.utts, max_frames)
    search = None
    if method == "beam":
        search = BeamOptions(lm_path, lexicon_path, lm_weight, word_bonus, beam_size).search(tokenizer)
    hyps: dict[str, str] = {}
    began = time.perf_counter()
    with torch.no_grad():
        for utts in length_batches(data.num_frames, max_frames, shuffle=False):
            batch = data.batch(utts)
            with autocast(dev):
                log_probs, lens = model(batch["feats"].to(dev), batch["feat_lens"].to(dev))
            log_probs = log_probs.float()
            if search is None:
                for utt, ids in zip(utts, greedy_decode(log_probs, lens), strict=True):
                    hyps[utt] = tokenizer.decode(ids)
            else:
                for b, utt in enumerate(utts):
                    hyps[utt] = search.decode(log_probs[b, : int(lens[b])].cpu().numpy())
    seconds = time.perf_counter() - began
    audio = sum(data.num_frames.values()) * cfg.fbank.frame_shift_ms / 1000
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_lines(out_dir / "hyp.txt", [f"{u} {hyps[u]}".rstrip() for u in sorted(hyps)])
    if data.data.text:
        atomic_write_lines(out_dir / "ref.txt", [f"{u} {tokenizer.norm(data.data.text[u])}" for u in sorted(hyps)])
    else:  # an untranscribed data dir has no references (nor may an earlier run's stay beside these hypotheses)
        (out_dir / "ref.txt").unlink(missing_ok=True)
    result = {"utterances": len(hyps), "audio_seconds": round(audio, 2), "decode_seconds": round(seconds, 3),
              "rtf": seconds / max(audio, 1e-9), "method": method, "missing_features": len(data.missing)}
    log.info("decoded %d utterances (%.1f s of audio) in %.2f s: RTF %.4f", len(hyps), audio, seconds,
             result["rtf"])
    return result
