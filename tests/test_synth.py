"""The synthetic corpus: deterministic, speakers and splits as asked, real speech-like audio, distinct voices."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data_prep"))
import sentences  # noqa: E402
import synth  # noqa: E402

from speechmeta.data.datadir import DataDir, validate_data_dir  # noqa: E402
from speechmeta.data.fbank import fbank  # noqa: E402
from speechmeta.data.tokenizer import TextNorm  # noqa: E402


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "c"
    synth.prepare(out, num_speakers=5, num_test=2, utts_per_spk=4, dev_utts=1, seed=3, nj=2, progress=False)
    return out


def test_splits_speakers_and_validity(corpus):
    train, dev, test = (DataDir.load(corpus / s) for s in ("train", "dev", "test"))
    assert train.spks == dev.spks == ["spk001", "spk002", "spk003"] and test.spks == ["spk004", "spk005"]
    assert len(train.utts) == 12 and len(dev.utts) == 3 and len(test.utts) == 8
    for split in ("train", "dev", "test"):
        assert validate_data_dir(corpus / split) == []
    assert set(train.text.values()).isdisjoint(dev.text.values())  # dev: the same voices, new sentences


def test_same_seed_gives_byte_identical_output_whatever_nj(corpus, tmp_path):
    again = tmp_path / "again"
    synth.prepare(again, num_speakers=5, num_test=2, utts_per_spk=4, dev_utts=1, seed=3, nj=1, progress=False)
    assert digest(again) == digest(corpus)
    other = tmp_path / "other"
    synth.prepare(other, num_speakers=5, num_test=2, utts_per_spk=4, dev_utts=1, seed=4, nj=2, progress=False)
    assert (other / "train" / "text").read_text() != (corpus / "train" / "text").read_text()


def test_audio_is_speech_like_and_transcripts_normalized(corpus):
    data = DataDir.load(corpus / "train")
    for utt in data.utts:
        x, rate = sf.read(str(data.audio(utt).path))
        assert rate == 16000 and len(x) > rate  # over a second
        frames = np.abs(x[: len(x) // 160 * 160]).reshape(-1, 160).max(axis=1)
        assert (frames > 0.05).mean() > 0.3  # mostly sound, not silence
        assert data.text[utt] == TextNorm()(data.text[utt]) and not any(c.isdigit() for c in data.text[utt])


def test_each_speaker_reads_different_sentences(corpus):
    data = DataDir.load(corpus / "train")
    per_spk = [{data.text[u] for u in data.spk2utt[s]} for s in data.spks]
    assert all(a.isdisjoint(b) for i, a in enumerate(per_spk) for b in per_spk[i + 1:])


def test_held_out_accents_are_absent_from_training(corpus):
    voices = {}
    for split in ("train", "test"):
        for line in (corpus / split / "spk2voice").read_text().splitlines():
            spk, desc = line.split(maxsplit=1)
            voices[spk] = (split, dict(kv.split("=") for kv in desc.split()))
    train_accents = {v["accent"] for s, v in voices.values() if s == "train"}
    test_accents = {v["accent"] for s, v in voices.values() if s == "test"}
    assert test_accents <= set(synth.HELD_OUT_ACCENTS) and train_accents.isdisjoint(test_accents)


def test_different_voices_give_different_audio(tmp_path):
    """The same sentence from three speakers: mean log-mel spectra differ far more between voices than between two
    readings by one voice (which differ by rate/pitch jitter, pauses and noise)."""
    spks = synth.make_speakers(6, 0, "none", seed=1)[:3]
    text = "the quick brown fox jumps over the lazy dog"
    for s in spks:
        synth.synth_speaker(s, [(f"{s.spk}-x", text), (f"{s.spk}-y", text)], str(tmp_path), seed=1)
    mean = {(s.spk, k): fbank(sf.read(str(tmp_path / s.spk / f"{s.spk}-{k}.wav"), dtype="float32")[0]).mean(0)
            for s in spks for k in "xy"}
    within = [np.abs(mean[(s.spk, "x")] - mean[(s.spk, "y")]).mean() for s in spks]
    between = [np.abs(mean[(a.spk, "x")] - mean[(b.spk, "x")]).mean() for a in spks for b in spks if a.spk < b.spk]
    assert min(between) > 3 * max(within), (between, within)


def test_text_file_sentences(tmp_path):
    text = tmp_path / "text"
    text.write_text("u1 HELLO THERE FRIEND\nu2 HOW ARE YOU\nu3 good morning, sir!\n")
    out = tmp_path / "c"
    synth.prepare(out, num_speakers=2, num_test=0, utts_per_spk=3, dev_utts=0, seed=0, text_file=text,
                  text_has_ids=True, nj=2, progress=False)
    data = DataDir.load(out / "train")
    assert not (out / "test").exists() and not (out / "dev").exists()
    assert {data.text[u] for u in data.spk2utt["spk001"]} == {"HELLO THERE FRIEND", "HOW ARE YOU", "GOOD MORNING SIR"}


def test_resume_keeps_finished_speakers(corpus, tmp_path):
    out = tmp_path / "r"
    synth.prepare(out, num_speakers=3, num_test=1, utts_per_spk=2, dev_utts=0, seed=5, nj=1, progress=False)
    before = digest(out)
    (out / "wav" / "spk002" / ".done").unlink()
    (out / "wav" / "spk002" / "spk002-0001.wav").write_bytes(b"partial")
    synth.prepare(out, num_speakers=3, num_test=1, utts_per_spk=2, dev_utts=0, seed=5, nj=1, progress=False)
    assert digest(out) == before


def test_sentence_generator():
    a, b = sentences.sentences(200, seed=1), sentences.sentences(200, seed=1)
    assert a == b and len(set(a)) == 200
    words = {w for s in a for w in TextNorm()(s).split()}
    assert len(words) > 300
    assert sentences.number_words(342) == "three hundred and forty two"
    assert sentences.number_words(1005) == "one thousand and five"
    assert sentences.year_words(1984) == "nineteen eighty four" and sentences.year_words(1905) == "nineteen oh five"
    assert [sentences.plural(n) for n in ("box", "story", "day", "knife")] == ["boxes", "stories", "days", "knives"]
