"""End to end on a tiny overfitted model: decode (greedy, beam + LM + lexicon), hyp/ref files, RTF, score."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data_prep"))
import synth  # noqa: E402

from speechmeta.cli import main  # noqa: E402
from speechmeta.config import load_config  # noqa: E402
from speechmeta.data.compute_feats import compute_feats  # noqa: E402
from speechmeta.data.datadir import DataDir  # noqa: E402
from speechmeta.train import train  # noqa: E402


@pytest.fixture(scope="module", params=["char", "phone"])
def trained(tmp_path_factory, request):
    """A tiny model overfitted to 4 utterances, with character units or phone units of a lexicon (each word's
    letters as its phones, with stress marks: `CAT c1 a0 t0`), made by `speechmeta make-units`."""
    out = tmp_path_factory.mktemp(f"e2e_{request.param}")
    synth.prepare(out, num_speakers=2, num_test=0, utts_per_spk=2, dev_utts=0, seed=0, nj=2, progress=False)
    compute_feats(out / "train", progress=False)
    lexicon = []
    if request.param == "phone":
        words = sorted({w for t in DataDir.load(out / "train").text.values() for w in t.split()})
        (out / "pron.txt").write_text("".join(f"{w} {' '.join(c.lower() + '1' for c in w)}\n" for w in words))
        lexicon = ["--lexicon", str(out / "pron.txt")]
    assert main(["make-units", str(out / "train"), "--out", str(out / "units.txt"), *lexicon]) == 0
    cfg = load_config(overrides=["model.size=tiny", "model.dropout=0.0", "train.epochs=70", "train.lr=3e-3",
                                 "train.warmup_steps=10", "train.specaug_from_epoch=1000",
                                 "train.max_frames=100000", "train.average_last=1"])
    train(cfg, out / "train", out / "train", out / "units.txt", out / "exp", progress=False)
    return out


@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_decode_and_score(trained, method, capsys):
    out = trained / f"decode_{method}"
    extra = []
    if method == "beam":
        assert main(["train-lm", "--text", str(trained / "train" / "text"), "--order", "2", "--out",
                     str(trained / "lm.json")]) == 0
        words = sorted({w for t in DataDir.load(trained / "train").text.values() for w in t.split()})
        (trained / "lexicon.txt").write_text("".join(f"{w} X\n" for w in words))
        extra = ["--method", "beam", "--lm", str(trained / "lm.json"), "--lexicon", str(trained / "lexicon.txt")]
    assert main(["decode", "--model", str(trained / "exp" / "average.pt"), "--data", str(trained / "train"),
                 "--out", str(out), *extra]) == 0
    printed = capsys.readouterr().out
    assert "4 utterances" in printed and "RTF" in printed
    assert (out / "hyp.txt").read_text() == (out / "ref.txt").read_text() == (trained / "train" / "text").read_text()
    assert main(["score", "--ref", str(out / "ref.txt"), "--hyp", str(out / "hyp.txt"), "--utt2spk",
                 str(trained / "train" / "utt2spk"), "--out", str(out / "score")]) == 0
    assert json.loads((out / "score" / "wer.json").read_text())["wer"] == 0.0
