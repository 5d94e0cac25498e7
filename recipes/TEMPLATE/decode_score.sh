#!/usr/bin/env bash
# Decode a data dir greedily and with beam search + LM, and score both. The beam's LM weight and word bonus are
# tuned on a development data dir (never on the test data): the lowest dev WER among the settings whose dev WER and
# CER are both no worse than greedy decoding's (beam must never be worse than greedy); plain beam search (no LM
# weight, no bonus) when no setting qualifies.
#   decode_score.sh MODEL TEST_DIR OUT_DIR LM DEV_DIR [LEXICON]
# Writes OUT_DIR/{greedy,beam}/{hyp.txt,ref.txt,score/wer.md,score/wer.json}. The tuning is done once per model and
# development dir (MODEL_DIR/tune_<dev>/, with beam_tuning.txt) and reused when other test dirs are decoded with the
# same LM, lexicon and grid (its first line records them; a different setup is tuned again).
# The grid: LM_WEIGHTS and WORD_BONUSES (environment; default "0.1 0.2 0.3 0.5" and "0.0 1.0 2.0 3.0"); the beam
# size: BEAM (environment; default 10).
# RESCORE_N > 0 (environment; for a model trained with --aux-units) adds two-pass decoding: both heads' searches, at
# the tuned weights, list their RESCORE_N best on the dev and test dirs (speechmeta nbest), and the pooled lists are
# rescored with the auxiliary head's weight (RESCORE_AUX_WEIGHTS, default "0.0 0.2 0.4 0.6"), the LM weight and the
# word bonus chosen on the dev dir's lists over the same grid (speechmeta rescore): OUT_DIR/rescore/.
# RESCORE_SECOND_MODEL (environment): the second head is that model's (speechmeta nbest --second-model: another model
# trained on the same features, e.g. a character model beside a phone model); MODEL then needs no auxiliary head.
set -euo pipefail
model=$1; test_dir=$2; out=$3; lm=$4; dev_dir=$5; lexicon=${6:-}
lexicon_opt=()
[ -n "$lexicon" ] && lexicon_opt=(--lexicon "$lexicon")
lm_weights=${LM_WEIGHTS:-0.1 0.2 0.3 0.5}; word_bonuses=${WORD_BONUSES:-0.0 1.0 2.0 3.0}; beam=${BEAM:-10}
mkdir -p "$out"

rates_of() { python -c "import json,sys; d=json.load(open(sys.argv[1])); print(d['wer'], d['cer'])" "$1"; }
better() { python -c "import sys; a=list(map(float, sys.argv[1:])); sys.exit(0 if a[0] < a[1] else 1)" "$@"; }

tuning_dir="$(dirname "$model")/tune_$(basename "$dev_dir")"
tuning="$tuning_dir/beam_tuning.txt"
setup="setup: lm=$lm lexicon=${lexicon:-none} lm_weights=$lm_weights word_bonuses=$word_bonuses"
[ "$beam" = 10 ] || setup="$setup beam=$beam"  # (tunings made before BEAM existed stay valid at the default)
if [ -f "$tuning" ] && [ "$(head -n 1 "$tuning")" != "$setup" ]; then
  echo "$tuning was tuned for another setup; tuning again"
  rm -rf "$tuning_dir"
fi
if [ -f "$tuning" ] && grep -q '^best on' "$tuning"; then
  read -r weight bonus <<< "$(sed -n 's/^best on .*: lm_weight=\([^ ]*\) word_bonus=\([^ ]*\) .*/\1 \2/p' "$tuning")"
else
  mkdir -p "$tuning_dir"
  speechmeta decode --model "$model" --data "$dev_dir" --out "$tuning_dir/greedy" > /dev/null
  speechmeta score --ref "$tuning_dir/greedy/ref.txt" --hyp "$tuning_dir/greedy/hyp.txt" \
    --out "$tuning_dir/greedy/score" > /dev/null
  read -r greedy_wer greedy_cer <<< "$(rates_of "$tuning_dir/greedy/score/wer.json")"
  printf '%s\ngreedy dev_wer=%s dev_cer=%s\n' "$setup" "$greedy_wer" "$greedy_cer" > "$tuning"
  weight=0.0; bonus=0.0; best_wer=2; why="no setting as good as greedy on both WER and CER: plain beam"
  for w in $lm_weights; do
    for b in $word_bonuses; do
      tune="$tuning_dir/w${w}_b${b}"
      speechmeta decode --model "$model" --data "$dev_dir" --out "$tune" --method beam --beam "$beam" --lm "$lm" \
        --lm-weight "$w" --word-bonus "$b" "${lexicon_opt[@]}" > /dev/null
      speechmeta score --ref "$tune/ref.txt" --hyp "$tune/hyp.txt" --out "$tune/score" > /dev/null
      read -r wer cer <<< "$(rates_of "$tune/score/wer.json")"
      echo "lm_weight=$w word_bonus=$b dev_wer=$wer dev_cer=$cer" >> "$tuning"
      if ! better "$greedy_wer" "$wer" && ! better "$greedy_cer" "$cer" && better "$wer" "$best_wer"; then
        best_wer=$wer; weight=$w; bonus=$b; why="dev WER $wer"
      fi
    done
  done
  echo "best on $dev_dir: lm_weight=$weight word_bonus=$bonus ($why)" | tee -a "$tuning"
fi
echo "beam search (beam $beam) with lm_weight=$weight word_bonus=$bonus (tuned on $dev_dir, see $tuning)"

speechmeta decode --model "$model" --data "$test_dir" --out "$out/greedy" --threads 1
speechmeta decode --model "$model" --data "$test_dir" --out "$out/beam" --method beam --beam "$beam" --lm "$lm" \
  --lm-weight "$weight" --word-bonus "$bonus" "${lexicon_opt[@]}" --threads 1
methods="greedy beam"
if [ "${RESCORE_N:-0}" -gt 0 ]; then
  nbest_opts=(--n "$RESCORE_N" --beam "$beam" --lm "$lm" --lm-weight "$weight" --word-bonus "$bonus" "${lexicon_opt[@]}")
  dev_nbest=$tuning_dir/nbest_n${RESCORE_N}_w${weight}_b${bonus}  # the searches' weights are the tuned ones
  if [ -n "${RESCORE_SECOND_MODEL:-}" ]; then  # lists of two models: made anew each time (the cache is one model's)
    nbest_opts+=(--second-model "$RESCORE_SECOND_MODEL")
    dev_nbest=$out/nbest_dev
    rm -f "$dev_nbest/nbest.json"
  fi
  [ -f "$dev_nbest/nbest.json" ] || speechmeta nbest --model "$model" --data "$dev_dir" --out "$dev_nbest" \
    "${nbest_opts[@]}" > /dev/null
  speechmeta nbest --model "$model" --data "$test_dir" --out "$out/nbest" "${nbest_opts[@]}" --threads 1
  # shellcheck disable=SC2086  # the grids are lists of numbers
  speechmeta rescore --nbest "$out/nbest/nbest.json" --tune-nbest "$dev_nbest/nbest.json" --out "$out/rescore" \
    --aux-weights ${RESCORE_AUX_WEIGHTS:-0.0 0.2 0.4 0.6} --lm-weights $lm_weights --word-bonuses $word_bonuses
  methods="$methods rescore"
fi
for method in $methods; do
  echo -n "$method: "
  speechmeta score --ref "$out/$method/ref.txt" --hyp "$out/$method/hyp.txt" --utt2spk "$test_dir/utt2spk" \
    --out "$out/$method/score"
done
