#!/usr/bin/env bash
# Synthetic multi-speaker corpus recipe: the embedded default, offline (eSpeak NG from PyPI, no download).
# Stages so far: 0 corpus generation (train / dev / held-out test speakers), 1 log-mel features, CMVN stats and
# character units, 2 few-shot split files for the held-out speakers, 3 base training (initialization learning),
# 4 decoding (greedy; beam + LM tuned on dev) and scoring of dev (seen voices, new sentences) and test (held-out
# voices). Meta-training, adaptation and the per-method report are later stages (see README.md).
set -euo pipefail
cd "$(dirname "$0")"
REPO=$(cd ../.. && pwd)  # upper case: not an option

stage=0
stop_stage=4
base_conf=conf/base.yaml
speakers=60          # held-out speakers included
test_speakers=12
utts_per_speaker=50
seed=0
unseen=accent        # what held-out speakers have that training speakers lack: none, accent, variant, both
nj=2
. ../TEMPLATE/parse_options.sh

mkdir -p data exp
if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ] && [ ! -f data/.corpus.done ]; then
  echo "stage 0: generating the synthetic corpus"
  python "$REPO/data_prep/synth.py" --out data/corpus --speakers "$speakers" --test-speakers "$test_speakers" \
    --utts-per-speaker "$utts_per_speaker" --seed "$seed" --unseen "$unseen" --nj "$nj"
  for split in train dev test; do speechmeta validate-data "data/corpus/$split"; done
  touch data/.corpus.done
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ] && [ ! -f data/.feats.done ]; then
  echo "stage 1: features and units"
  for split in train dev test; do speechmeta compute-feats "data/corpus/$split" --nj "$nj"; done
  speechmeta make-units data/corpus/train --out data/lang_char/units.txt --check data/corpus/test
  touch data/.feats.done
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ] && [ ! -f data/.splits.done ]; then
  echo "stage 2: few-shot splits of the held-out speakers"
  python "$REPO/data_prep/splits.py" fewshot --data data/corpus/test --shots 1 3 5 10 --seeds 0 1 2 \
    --out data/fewshot
  touch data/.splits.done
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ] && [ ! -f exp/.base.done ]; then
  echo "stage 3: base training"
  speechmeta train --config "$base_conf" --train-dir data/corpus/train --valid-dir data/corpus/dev \
    --units data/lang_char/units.txt --exp-dir exp/base --resume
  speechmeta train-lm --text data/corpus/train/text --order 3 --out data/lang_char/lm3.json
  touch exp/.base.done
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ] && [ ! -f exp/.decode.done ]; then
  echo "stage 4: decoding and scoring the base model"
  for split in dev test; do
    ../TEMPLATE/decode_score.sh exp/base/average.pt "data/corpus/$split" "exp/base/decode_$split" \
      data/lang_char/lm3.json data/corpus/dev
  done
  touch exp/.decode.done
fi

echo "Done: stages $stage-$stop_stage (data, features, splits, base training, decoding). Meta-training, speaker" \
     "adaptation and the per-method WER report are not in this recipe yet."
for split in train dev test; do
  echo "  data/corpus/$split: $(wc -l < data/corpus/$split/spk2utt) speakers, $(wc -l < data/corpus/$split/utt2spk)" \
       "utterances"
done
for split in dev test; do
  for method in greedy beam; do
    report=exp/base/decode_$split/$method/score/wer.json
    [ -f "$report" ] && echo "  base model, $split, $method: $(python -c "import json,sys; r=json.load(open(sys.argv[1])); \
print(r['kaldi'], 'CER %.2f%%' % (100 * r['cer']))" "$report")"
  done
done
