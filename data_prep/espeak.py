"""eSpeak NG through ctypes, from the PyPI package `espeakng-loader` (library + voice data; no system package).

libespeak-ng keeps global state (pitch flutter counters, noise generators) that carries from one utterance to the
next, so its output depends on everything the process synthesized before. Reproducible audio therefore needs a fresh
process for each independent sequence of utterances; `synth.py` runs one process per speaker.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

AUDIO_OUTPUT_SYNCHRONOUS = 2
POS_CHARACTER = 1
CHARS_UTF8 = 1
RATE, VOLUME, PITCH, RANGE, WORDGAP = 1, 2, 3, 4, 7  # espeak_PARAMETER
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class ESpeak:
    """One eSpeak NG engine per process: `synth(text, voice, ...)` returns int16 samples at `sample_rate`."""

    _instance: ESpeak | None = None

    def __new__(cls, seed: int = 0):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
            cls._instance._init(seed)
        return cls._instance

    def _init(self, seed: int) -> None:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        data_parent = str(Path(espeakng_loader.get_data_path()).parent).encode()
        self.sample_rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_parent, 0)
        if self.sample_rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed ({self.sample_rate}) with data at {data_parent.decode()}")
        self._chunks: list[np.ndarray] = []

        def collect(wav, n, events):
            if n > 0:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        self._callback = _CALLBACK(collect)  # kept referenced: the library calls it later
        lib.espeak_SetSynthCallback(self._callback)
        lib.espeak_ng_SetRandSeed(seed)
        self.lib = lib

    def synth(self, text: str, voice: str, rate: int = 120, pitch: int = 50, pitch_range: int = 50,
              word_gap: int = 0) -> np.ndarray:
        """Speak `text` with `voice` ("accent+variant", e.g. "en-gb-scotland+f2"); rate in words per minute."""
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"eSpeak NG has no voice '{voice}'")
        for parameter, value in ((RATE, rate), (PITCH, pitch), (RANGE, pitch_range), (WORDGAP, word_gap)):
            self.lib.espeak_SetParameter(parameter, int(value), 0)
        self._chunks = []
        data = text.encode("utf-8")
        status = self.lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        if status != 0 or not self._chunks:
            raise RuntimeError(f"eSpeak NG failed (status {status}) on '{text}' with voice '{voice}'")
        return np.concatenate(self._chunks)
