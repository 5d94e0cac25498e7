#!/usr/bin/env bash
# Decode a data dir greedily and with beam search + LM, and score both. The beam's LM weight and word bonus are
# tuned on a development data dir (never on the test data), by WER.
#   decode_score.sh MODEL TEST_DIR OUT_DIR LM DEV_DIR [LEXICON]
# Writes OUT_DIR/{greedy,beam}/{hyp.txt,ref.txt,score/wer.md,score/wer.json}. The tuning is done once per model and
# development dir (MODEL_DIR/tune_<dev>/, with beam_tuning.txt) and reused when other test dirs are decoded.
# The grid: LM_WEIGHTS and WORD_BONUSES (environment; default "0.1 0.2 0.3 0.5" and "0.0 1.0 2.0 3.0").
set -euo pipefail
model=$1; test_dir=$2; out=$3; lm=$4; dev_dir=$5; lexicon=${6:-}
lexicon_opt=()
[ -n "$lexicon" ] && lexicon_opt=(--lexicon "$lexicon")
mkdir -p "$out"

wer_of() { python -c "import json,sys; print(json.load(open(sys.argv[1]))['wer'])" "$1"; }

tuning_dir="$(dirname "$model")/tune_$(basename "$dev_dir")"
tuning="$tuning_dir/beam_tuning.txt"
best=""; best_wer=2
if [ -f "$tuning" ] && grep -q '^best on' "$tuning"; then
  read -r weight bonus <<< "$(sed -n 's/^best on .*: lm_weight=\([^ ]*\) word_bonus=\([^ ]*\) .*/\1 \2/p' "$tuning")"
  best="$weight $bonus"
else
mkdir -p "$tuning_dir"
: > "$tuning"
for weight in ${LM_WEIGHTS:-0.1 0.2 0.3 0.5}; do
  for bonus in ${WORD_BONUSES:-0.0 1.0 2.0 3.0}; do
    tune="$tuning_dir/w${weight}_b${bonus}"
    speechmeta decode --model "$model" --data "$dev_dir" --out "$tune" --method beam --lm "$lm" \
      --lm-weight "$weight" --word-bonus "$bonus" "${lexicon_opt[@]}" > /dev/null
    speechmeta score --ref "$tune/ref.txt" --hyp "$tune/hyp.txt" --out "$tune/score" > /dev/null
    wer=$(wer_of "$tune/score/wer.json")
    echo "lm_weight=$weight word_bonus=$bonus dev_wer=$wer" >> "$tuning"
    if python -c "import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)" "$wer" "$best_wer"; then
      best_wer=$wer; best="$weight $bonus"
    fi
  done
done
read -r weight bonus <<< "$best"
echo "best on $dev_dir: lm_weight=$weight word_bonus=$bonus (dev WER $best_wer)" | tee -a "$tuning"
fi
echo "beam search with lm_weight=$weight word_bonus=$bonus (tuned on $dev_dir, see $tuning)"

speechmeta decode --model "$model" --data "$test_dir" --out "$out/greedy" --threads 1
speechmeta decode --model "$model" --data "$test_dir" --out "$out/beam" --method beam --lm "$lm" \
  --lm-weight "$weight" --word-bonus "$bonus" "${lexicon_opt[@]}" --threads 1
for method in greedy beam; do
  echo -n "$method: "
  speechmeta score --ref "$out/$method/ref.txt" --hyp "$out/$method/hyp.txt" --utt2spk "$test_dir/utt2spk" \
    --out "$out/$method/score"
done
