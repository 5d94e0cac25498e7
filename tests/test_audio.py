"""Audio loading: mono, resampling (8 kHz FSDD input), and errors that name the utterance and the file."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from conftest import tone, write_wav

from speechmeta.data.audio import AudioError, load_audio


def peak_hz(x: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * sample_rate / len(x))


def test_8khz_is_resampled_to_16khz_keeping_the_pitch(tmp_path):
    path = write_wav(tmp_path / "a.wav", tone(1.0, 8000, freq=1000.0), 8000)
    x = load_audio(path, 16000)
    assert x.dtype == np.float32 and abs(len(x) - 16000) <= 1
    assert abs(peak_hz(x, 16000) - 1000.0) < 5


@pytest.mark.parametrize("rate", [22050, 44100, 48000])
def test_other_rates_are_resampled(tmp_path, rate):
    path = write_wav(tmp_path / "a.wav", tone(0.5, rate, freq=700.0), rate)
    x = load_audio(path, 16000)
    assert abs(len(x) - 8000) <= 1 and abs(peak_hz(x, 16000) - 700.0) < 5


def test_stereo_is_mixed_down_and_flac_reads(tmp_path):
    left, right = tone(0.5, seed=1), tone(0.5, freq=300, seed=2)
    path = tmp_path / "s.flac"
    sf.write(str(path), np.stack([left, right], axis=1), 16000, subtype="PCM_16")
    x = load_audio(path, 16000)
    assert x.shape == (8000,)
    np.testing.assert_allclose(x, (left + right) / 2, atol=2 / 32768)


def test_segment_is_read(tmp_path):
    samples = tone(1.0)
    path = write_wav(tmp_path / "a.wav", samples, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(path, start=0.25, end=0.5), samples[4000:8000])
    with pytest.raises(AudioError, match="segment ends at 3.00 s, after the end of the file"):
        load_audio(path, start=0.0, end=3.0, utt="u1")


def test_bad_audio_errors_name_utterance_and_path(tmp_path):
    good = write_wav(tmp_path / "good.wav", tone(0.5))
    raw = good.read_bytes()
    cases = {
        "missing.wav": (None, "file not found"),
        "empty.wav": (b"", r"empty file \(0 bytes\)"),
        "header.wav": (raw[:20], "not readable audio"),
        "truncated.wav": (raw[: len(raw) // 2], "truncated WAV: header declares 16000 data bytes, file holds 7978"),
        "text.wav": (b"this is not audio at all, just some text\n" * 10, "not readable audio"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(AudioError, match=message) as e:
            load_audio(path, utt="spk1-u7")
        assert str(e.value).startswith(f"utterance 'spk1-u7': {path}: ")
        assert e.value.utt == "spk1-u7" and e.value.path == str(path)


def test_nan_and_inf_samples_are_refused(tmp_path):
    x = tone(0.2)
    x[100] = np.nan
    path = write_wav(tmp_path / "nan.wav", x, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or infinite"):
        load_audio(path, utt="u")
    x[100] = np.inf
    write_wav(path, x, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or infinite"):
        load_audio(path, utt="u")


def test_truncated_flac_is_refused(tmp_path):
    path = tmp_path / "a.flac"
    sf.write(str(path), tone(2.0, seed=3), 16000)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(AudioError, match="utterance 'u': .*a.flac: (decoding failed|truncated)"):
        load_audio(path, utt="u")


def test_audio_error_survives_pickling():
    import pickle

    e = pickle.loads(pickle.dumps(AudioError("u1", "/a.wav", "file not found")))
    assert (e.utt, e.path, e.reason) == ("u1", "/a.wav", "file not found")
    assert str(e) == "utterance 'u1': /a.wav: file not found"
