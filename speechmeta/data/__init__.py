"""Data layer: Kaldi-style data dirs, audio, features, CMVN, character units."""
