"""Two-pass decoding with a model's second CTC head: N-best lists, then rescoring (`speechmeta nbest`, `rescore`).

A model trained with `--aux-units` spells its transcripts in two unit sets on one encoder (phones and characters, say),
and the two err differently: a phone model writes whole wrong words from the lexicon, a character model misspells.
The second unit set can also come from a second model (`--second-model`: trained apart on the same features, e.g. the
character model beside the phone model); its head then plays the auxiliary head's part below.
First pass: each head's prefix beam search (LM, lexicon) lists its N best word sequences; the lists are pooled.
Second pass: each pooled hypothesis gets its exact CTC log-likelihood under both heads, and the best by

    (1 - aux_weight) * log P_ctc,main + aux_weight * log P_ctc,aux + lm_weight * log P_lm + word_bonus * words

is kept; the three weights are chosen on a development set's lists (`tune`), never on the test set's.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from speechmeta.data.dataset import MAX_FRAMES, length_batches
from speechmeta.data.phone_tokenizer import Tokenizer, tokenizer_from_dict
from speechmeta.decode import BeamOptions
from speechmeta.fileio import atomic_write_lines, atomic_write_text
from speechmeta.lm import NgramLM
from speechmeta.scoring import score
from speechmeta.train import autocast, load_model, model_data, resolve_device

FIELDS = ("words", "ctc", "aux_ctc", "lm")  # one hypothesis of an N-best list


def sequence_log_likelihoods(log_probs: torch.Tensor, tokenizer: Tokenizer, texts: list[str]) -> list[float]:
    """log P_ctc(text | frames) of each of `texts` for one utterance's (T, V) log-probs (-inf: cannot align)."""
    targets = [torch.tensor(tokenizer.encode(t), dtype=torch.long) for t in texts]
    padded = torch.nn.utils.rnn.pad_sequence(targets, batch_first=True) if any(len(t) for t in targets) \
        else torch.zeros(len(texts), 1, dtype=torch.long)
    frames = log_probs.unsqueeze(1).expand(-1, len(texts), -1)  # (T, H, V)
    loss = F.ctc_loss(frames, padded, torch.full((len(texts),), log_probs.shape[0]),
                      torch.tensor([len(t) for t in targets]), reduction="none")
    return [-float(v) for v in loss]


def nbest_lists(model_path: Path, data_dir: Path, options: BeamOptions, n: int, device: str = "cpu",
                max_frames: int = MAX_FRAMES, second_model: Path | None = None
                ) -> tuple[dict[str, list[list]], dict[str, str]]:
    """(utt -> its pooled hypotheses, each [words, log P_ctc of the main head, of the aux head, log P_lm with </s>];
    utt -> its normalized transcript). The aux head: the model's own, or `second_model`'s head."""
    model, tokenizer, cfg, state = load_model(model_path, device)
    dev = resolve_device(device)
    data = model_data(data_dir, tokenizer, cfg, state)
    data.check_length(data.utts, max_frames)
    if second_model is None:
        if model.aux_head is None:
            raise ValueError(f"{model_path} has no auxiliary CTC head to rescore with (train it with --aux-units, "
                             "or give a second model with --second-model)")
        aux = tokenizer_from_dict(state["aux_tokenizer"])
    else:
        other, aux, other_cfg, other_state = load_model(second_model, device)
        other_data = model_data(data_dir, aux, other_cfg, other_state)  # the same features, its own CMVN
    searches = (options.search(tokenizer), options.search(aux))
    lm = NgramLM.load(options.lm) if options.lm else None
    lists: dict[str, list[list]] = {}
    with torch.no_grad():
        for utts in length_batches(data.num_frames, max_frames, shuffle=False):
            batch = data.batch(utts)
            with autocast(dev):
                encoded, lens, _ = model.encode(batch["feats"].to(dev), batch["feat_lens"].to(dev))
                heads = [(model.head(encoded).log_softmax(dim=-1), lens)]
                if second_model is None:
                    heads.append((model.aux_log_probs(encoded), lens))
                else:
                    other_batch = other_data.batch(utts)
                    heads.append(other(other_batch["feats"].to(dev), other_batch["feat_lens"].to(dev)))
            for b, utt in enumerate(utts):
                frames = [lp[b, : int(lp_lens[b])].float().cpu() for lp, lp_lens in heads]
                pooled = dict.fromkeys(" ".join(words) for search, lp in zip(searches, frames, strict=True)
                                       for _, words in search.nbest(lp.numpy(), n))
                texts = list(pooled)
                main_ll = sequence_log_likelihoods(frames[0], tokenizer, texts)
                aux_ll = sequence_log_likelihoods(frames[1], aux, texts)
                lists[utt] = [[t, m, a, lm.sentence_logprob(t) if lm else 0.0]
                              for t, m, a in zip(texts, main_ll, aux_ll, strict=True)]
    return lists, {u: tokenizer.norm(data.data.text[u]) for u in lists}


def write_nbest(path: Path, lists: dict[str, list[list]], refs: dict[str, str], setup: dict) -> None:
    atomic_write_text(path, json.dumps({"setup": setup, "fields": FIELDS, "refs": refs, "nbest": lists}))


def read_nbest(path: str | os.PathLike) -> dict:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if tuple(data.get("fields", ())) != FIELDS:
        raise ValueError(f"{path} is not an N-best file of this version (fields {data.get('fields')}, "
                         f"expected {list(FIELDS)}): write it again with 'speechmeta nbest'")
    return data


def rescore(lists: dict[str, list[list]], aux_weight: float, lm_weight: float, word_bonus: float) -> dict[str, str]:
    """utt -> its best hypothesis under the weights (see the module docstring)."""
    def total(h: list) -> float:
        words, ctc, aux_ctc, lm = h
        return (1 - aux_weight) * ctc + aux_weight * aux_ctc + lm_weight * lm + word_bonus * len(words.split())
    return {utt: max(hyps, key=total)[0] for utt, hyps in lists.items()}


def tune(dev: dict, aux_weights: list[float], lm_weights: list[float], word_bonuses: list[float],
         metric: str = "wer") -> tuple[tuple[float, float, float], list[str]]:
    """The weights with the lowest WER (or CER: `metric`) on a development set's N-best file (ties: the other rate,
    then the grid's order), and one line per setting tried."""
    if metric not in ("wer", "cer"):
        raise ValueError(f"the tuning metric must be wer or cer, not '{metric}'")
    other = "cer" if metric == "wer" else "wer"
    lines, best, best_key = [], None, None
    for a, w, b in itertools.product(aux_weights, lm_weights, word_bonuses):
        result = score(dev["refs"], rescore(dev["nbest"], a, w, b))
        lines.append(f"aux_weight={a} lm_weight={w} word_bonus={b} dev_wer={result['wer']:.4f} "
                     f"dev_cer={result['cer']:.4f}")
        if best_key is None or (result[metric], result[other]) < best_key:
            best, best_key = (a, w, b), (result[metric], result[other])
    return best, lines


def write_hyps(out_dir: Path, hyps: dict[str, str], refs: dict[str, str]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_lines(out_dir / "hyp.txt", [f"{u} {hyps[u]}".rstrip() for u in sorted(hyps)])
    atomic_write_lines(out_dir / "ref.txt", [f"{u} {refs[u]}" for u in sorted(hyps)])
