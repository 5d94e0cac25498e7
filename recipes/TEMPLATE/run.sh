#!/usr/bin/env bash
# The staged script every recipe shares. A recipe (recipes/<corpus>/run.sh) sets its corpus options, defines
# prepare_data (stage 0: write data/train, data/valid, data/dev, data/test as Kaldi data dirs; dev and test hold
# speakers unseen in training: dev tunes the adaptation methods, test is scored), then sources this file.
#   0 data prep   1 features, units, LM   2 few-shot splits of dev and test speakers   3 base training (optionally
#   synthetic pretraining first)   4 meta-training, one model per algorithm   5 decoding of the base model, then
#   adaptation + decoding for every method x K x test speaker (methods tuned on dev)   6 report
# Options: every variable below and the recipe's own (`--help` lists them); --stage N --stop-stage M run a part.
# Finished stages leave .done markers and are skipped on a rerun; an interrupted stage resumes where its tools can.
# Each run records its command line, options and git revision under exp/runs/; exp/.lock stops a second run.
stage=${stage:-0}
stop_stage=${stop_stage:-6}
nj=${nj:-2}                                     # parallel jobs: feature extraction, stages 4 and 5 (each of
                                                # the latter with its share of the CPU cores as torch threads)
seed=${seed:-0}
device=${device:-auto}
train_conf=${train_conf:-conf/base.yaml}        # base training (initialization learning)
pretrain_conf=${pretrain_conf:-}                # if set: pretrain on synthetic speech reading data/train/text first
synth_speakers=${synth_speakers:-70}            # voices for that synthetic pretraining corpus
synth_utts=${synth_utts:-100}                   # utterances per voice
synth_bandwidth=${synth_bandwidth:-0}           # Hz: band-limit those voices to the corpus's (0: full band)
meta_conf=${meta_conf:-conf/meta.yaml}          # meta-training (iterative learning)
meta_algorithms=${meta_algorithms:-"fomaml metasgd maml"}
meta_speakers=${meta_speakers:-0}               # N > 0: N training speakers (data/train_meta) are held out of base
                                                # training, and meta-training draws its tasks from them: speakers the
                                                # base model never heard, as a test speaker is (0: the base's own)
balance_by=${balance_by:-}                      # speaker attribute file[:threshold] those N are balanced over
baselines=${baselines:-"none finetune lhuc adapter"}
shots=${shots:-"5 10"}                          # K: adaptation utterances per speaker
seeds=${seeds:-"0"}                             # few-shot draws (each a different support/test split)
tune_steps=${tune_steps:-"1 3 10"}               # step counts tried on dev speakers, for every method alike
tune_utts=${tune_utts:-20}                       # test utterances per dev speaker scored while tuning
tune_seeds=${tune_seeds:-}                       # dev support draws tuning sums over (default: the first of seeds)
tune_per_k=${tune_per_k:-false}                  # true: tune the steps and rate for each K alone (else once for all K)
tune_metric=${tune_metric:-wer}                  # what tuning minimizes on dev: wer or cer
finetune_lrs=${finetune_lrs:-"0.01 0.03"}        # rates tried on dev speakers per baseline
lhuc_lrs=${lhuc_lrs:-"10 30"}
adapter_lrs=${adapter_lrs:-"0.3 1"}
units=${units:-char}                            # CTC units: char (letters) or phone (the phones of --lexicon, a
                                                # pronunciation lexicon `WORD PH1 PH2 ...` holding every training word)
aux_units=${aux_units:-}                        # char or phone (not --units): a second CTC head on the encoder, trained
                                                # beside the first (train.aux_ctc_weight in the configs), that rescores
                                                # N-best lists in stage 5 (--rescore-nbest); empty: none
aux_ctc_weight=${aux_ctc_weight:-0.3}           # its share of the training loss (train.aux_ctc_weight)
rescore_nbest=${rescore_nbest:-0}               # N > 0 (with --aux-units): stage 5 also decodes in two passes,
                                                # each head's N best rescored with both heads (decode_score.sh)
rescore_model=${rescore_model:-}                # a second model (checkpoint) trained on the same features with other
                                                # units: its head is the second head of --rescore-nbest, not --aux-units'
lexicon=${lexicon:-}                            # word list for the beam search (first column; optional for char:
                                                # stage 1 writes the training text's words to data/lang_<units>/words.txt)
beam_size=${beam_size:-10}                      # prefix beam search: beams kept per frame
lm_smoothing=${lm_smoothing:-witten_bell}      # the word 3-gram LM's smoothing: witten_bell or kneser_ney
lm_weights=${lm_weights:-"0.1 0.2 0.3 0.5"}      # beam search of the base model: LM weights tried on valid
word_bonuses=${word_bonuses:-"0.0 1.0 2.0 3.0"} # and word bonuses
adapt_decoding=${adapt_decoding:-beam}          # stage 5's adaptation runs: beam (LM, lexicon and the weights tuned
                                                # on valid for the model adapted) or greedy
meta_beam=${meta_beam:-own}                     # a meta model's beam weights: own (tuned on valid for it, as the base
                                                # model's are) or base (the base model's)
test_sets=${test_sets:-test}                    # held-out data dirs scored (data/<set>); reports per set
data=${data:-data}                              # where data dirs go
exp=${exp:-exp}                                 # where models, decodings and reports go
COMMAND_LINE=$(printf '%q ' "$0" "$@")  # before parse_options.sh consumes the options
. "$TEMPLATE/parse_options.sh"
[ "$(type -t configure)" = function ] && configure  # the recipe's last word on its options
case $adapt_decoding in beam|greedy) ;; *) echo "$0: --adapt-decoding must be beam or greedy" >&2; exit 1 ;; esac
case $units in char) ;; phone) [ -n "$lexicon" ] || { echo "$0: --units phone needs --lexicon" >&2; exit 1; } ;;
  *) echo "$0: --units must be char or phone" >&2; exit 1 ;; esac
case $aux_units in '') ;; char|phone) [ "$aux_units" != "$units" ] || { echo "$0: --aux-units must differ" \
  "from --units" >&2; exit 1; }; [ "$aux_units" = char ] || [ -n "$lexicon" ] || { echo "$0: --aux-units phone" \
  "needs --lexicon" >&2; exit 1; } ;; *) echo "$0: --aux-units must be char, phone or empty" >&2; exit 1 ;; esac
case $rescore_nbest in ''|*[!0-9]*) echo "$0: --rescore-nbest must be a number" >&2; exit 1 ;; esac
[ "$rescore_nbest" = 0 ] || [ -n "$aux_units$rescore_model" ] || { echo "$0: --rescore-nbest needs --aux-units or" \
  "--rescore-model" >&2; exit 1; }
[ -z "$rescore_model" ] || [ -f "$rescore_model" ] || { echo "$0: --rescore-model $rescore_model: no such file" >&2
  exit 1; }
[ -z "$rescore_model" ] || rescore_model=$(cd "$(dirname "$rescore_model")" && pwd)/$(basename "$rescore_model")
case $lm_smoothing in witten_bell|kneser_ney) ;; *) echo "$0: --lm-smoothing must be witten_bell or kneser_ney" >&2
  exit 1 ;; esac
case $beam_size in ''|*[!0-9]*|0) echo "$0: --beam-size must be a positive number" >&2; exit 1 ;; esac
case $meta_beam in own|base) ;; *) echo "$0: --meta-beam must be own or base" >&2; exit 1 ;; esac
case $meta_speakers in ''|*[!0-9]*) echo "$0: --meta-speakers must be a number of speakers" >&2; exit 1 ;; esac
BASE_TRAIN=$data/train; META_TRAIN=$data/train  # what base and meta-training learn from (upper case: not options)
LANG_DIR=$data/lang_$units  # units.txt (with lexicon.txt for phones), the LM, the training words
AUX=(); AUX_WEIGHT=()  # the second head's units and loss weight, for stage 3
if [ -n "$aux_units" ]; then
  AUX=(--aux-units "$data/lang_$aux_units/units.txt"); AUX_WEIGHT=(train.aux_ctc_weight="$aux_ctc_weight")
fi
if [ "$meta_speakers" -gt 0 ]; then BASE_TRAIN=$data/train_base; META_TRAIN=$data/train_meta; fi

mkdir -p "$data" "$exp"
exec 9> $exp/.lock
if ! flock -n 9; then
  echo "$0: another run is using $exp ($exp/.lock); wait for it to finish or stop it first" >&2
  exit 1
fi
RUN_DIR=$exp/runs/$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$RUN_DIR"
echo "${COMMAND_LINE% }" > "$RUN_DIR/command.txt"  # quoted: runs again as it is
git -C "$TEMPLATE" rev-parse HEAD > "$RUN_DIR/git_revision.txt" 2>/dev/null || echo unknown > "$RUN_DIR/git_revision.txt"
git -C "$TEMPLATE" status --porcelain --untracked-files=no >> "$RUN_DIR/git_revision.txt" 2>/dev/null || true
for v in $(grep -ohE '^[a-z][a-z0-9_]*=' "$(basename "$0")" "$TEMPLATE/run.sh" | tr -d '=' | sort -u); do
  printf '%s=%q\n' "$v" "${!v}"
done > "$RUN_DIR/options.txt"
step() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ] && [ ! -f "$2" ]; }
# spawn CMD...: run CMD in the background, at most $nj at once, each with $THREADS torch threads (one job on 2 threads
# is only ~1.2x one on 1 thread); a failed job stops the stage. wait_all: wait for every spawned job.
# threads_for N: a stage that spawns N jobs shares the cores among the min(N, nj) of them that run at once.
threads_for() {
  local at_once=$(( $1 < nj ? $1 : nj ))
  [ "$at_once" -ge 1 ] || at_once=1
  THREADS=$(( $(nproc) / at_once > 0 ? $(nproc) / at_once : 1 ))
}
threads_for "$nj"
trap 'kill $(jobs -pr) 2>/dev/null || true' EXIT
spawn() {
  while [ "$(jobs -pr | wc -l)" -ge "$nj" ]; do wait -n; done
  OMP_NUM_THREADS=$THREADS "$@" &
}
wait_all() { while [ -n "$(jobs -p)" ]; do wait -n; done; }
# kept_step0 META_PT: true when meta-training kept its initial weights (meta.keep=best found no better meta-step)
kept_step0() {
  [ -f "$1" ] && python -c "import sys; from speechmeta.checkpoint import load_checkpoint
sys.exit(0 if load_checkpoint(sys.argv[1])['step'] == 0 else 1)" "$1"
}

if step 0 $data/.prep.done; then
  echo "stage 0: data prep"
  prepare_data
  for d in train valid dev $test_sets; do speechmeta validate-data "$data/$d" --no-audio-check > /dev/null; done
  touch $data/.prep.done
fi

if step 1 $data/.feats.done; then
  echo "stage 1: features, units, LM"
  for d in train valid dev $test_sets; do  # the filterbank of the base config (fbank.*), which the model records
    speechmeta compute-feats "$data/$d" --nj "$nj" --no-progress --config "$train_conf"
  done
  pron=(); [ "$units" = phone ] && pron=(--lexicon "$lexicon")
  speechmeta make-units $data/train --out $LANG_DIR/units.txt --check $data/${test_sets%% *} "${pron[@]}"
  if [ -n "$aux_units" ]; then
    pron=(); [ "$aux_units" = phone ] && pron=(--lexicon "$lexicon")
    speechmeta make-units $data/train --out "$data/lang_$aux_units/units.txt" --check $data/${test_sets%% *} \
      "${pron[@]}"
  fi
  speechmeta train-lm --text $data/train/text --order 3 --smoothing "$lm_smoothing" --out $LANG_DIR/lm3.json
  cut -d' ' -f2- $data/train/text | tr ' ' '\n' | grep -v '^$' | sort -u > $LANG_DIR/words.txt  # a lexicon
  touch $data/.feats.done
fi

if step 2 $data/.splits.done; then
  echo "stage 2: few-shot splits of the dev and test speakers"
  for d in dev $test_sets; do
    draws=$seeds; [ "$d" = dev ] && draws=$(tr ' ' '\n' <<< "$seeds $tune_seeds" | grep . | sort -nu | xargs)
    python "$TEMPLATE/../../data_prep/splits.py" fewshot --data "$data/$d" --shots $shots --seeds $draws \
      --out "$data/fewshot_$d"
  done
  touch $data/.splits.done
fi

if step 3 $exp/.base.done; then
  echo "stage 3: base training"
  if [ "$meta_speakers" -gt 0 ]; then  # features are data/train's: the subsets point at them
    balance=(); [ -n "$balance_by" ] && balance=(--balance-by "$balance_by")
    python "$TEMPLATE/../../data_prep/splits.py" speakers --data $data/train --heldout "$meta_speakers" \
      --seed "$seed" "${balance[@]}" --out-train "$BASE_TRAIN" --out-heldout "$META_TRAIN"
  fi
  init=()
  if [ -n "$pretrain_conf" ]; then
    if [ ! -f $data/synth/.done ]; then
      python "$TEMPLATE/../../data_prep/synth.py" --out $data/synth --text $data/train/text --text-has-ids \
        --speakers "$synth_speakers" --test-speakers 0 --utts-per-speaker "$synth_utts" \
        --dev-utts-per-speaker 0 --unseen none --bandwidth "$synth_bandwidth" --seed "$seed" --nj "$nj" \
        --no-progress
      speechmeta compute-feats $data/synth/train --nj "$nj" --no-progress --config "$train_conf"
      touch $data/synth/.done
    fi
    speechmeta train --config "$pretrain_conf" --train-dir $data/synth/train --valid-dir $data/valid \
      --units $LANG_DIR/units.txt "${AUX[@]}" --exp-dir $exp/pretrain --resume --no-progress train.device="$device" \
      "${AUX_WEIGHT[@]}"
    init=(--init-from $exp/pretrain/average.pt)
  fi
  speechmeta train --config "$train_conf" --train-dir "$BASE_TRAIN" --valid-dir $data/valid \
    --units $LANG_DIR/units.txt "${AUX[@]}" --exp-dir $exp/base --resume --no-progress "${init[@]}" \
    train.device="$device" "${AUX_WEIGHT[@]}"
  touch $exp/.base.done
fi

if step 4 $exp/.meta.done; then
  echo "stage 4: meta-training ($meta_algorithms)"
  if [ "$meta_speakers" -gt 0 ] && [ "$(wc -l < "$META_TRAIN/spk2utt" 2>/dev/null)" != "$meta_speakers" ]; then
    echo "$0: --meta-speakers $meta_speakers, but $META_TRAIN does not hold that many: stage 3 split the training" \
      "speakers otherwise (rerun it with this option)" >&2
    exit 1
  fi
  todo=()  # the algorithms without a finished model
  for alg in $meta_algorithms; do [ -f "$exp/meta_$alg/meta.pt" ] || todo+=("$alg"); done
  threads_for "${#todo[@]}"
  for alg in "${todo[@]}"; do
    spawn speechmeta meta-train --config "$meta_conf" --base $exp/base/average.pt --train-dir "$META_TRAIN" \
      --valid-dir $data/dev --exp-dir "$exp/meta_$alg" --resume --no-progress meta.algorithm="$alg" \
      meta.device="$device"
  done
  wait_all
  touch $exp/.meta.done
fi

if step 5 $exp/.adapt.done; then
  echo "stage 5: decoding the base model; adaptation + decoding of every method x K x test speaker"
  lexicon_opt=()
  [ -n "$lexicon" ] && lexicon_opt=("$lexicon")
  for set in $test_sets; do
    out=$exp/adapt; [ "$set" = test ] || out=$exp/adapt_$set
    models=$exp/base/average.pt  # each decoded, its beam weights tuned on valid (EXP/<model dir>/tune_valid/)
    as_base=()  # meta models that kept meta-step 0: the base model's weights, so its decoding and tuning serve
    if [ "$adapt_decoding" = beam ] && [ "$meta_beam" = own ]; then
      for method in $meta_algorithms; do
        if kept_step0 "$exp/meta_$method/meta.pt"; then as_base+=("$exp/meta_$method"); continue; fi
        models+=" $exp/meta_$method/meta.pt"
        for link in "$exp/meta_$method/tune_valid" "$exp/meta_$method/decode_$set"; do  # a retrained meta model's
          if [ -L "$link" ]; then rm "$link"; fi  # results must not go through an earlier run's link into base/
        done
      done
    fi
    for model in $models; do
      RESCORE_N=$rescore_nbest RESCORE_SECOND_MODEL=$rescore_model LM_WEIGHTS=$lm_weights \
        WORD_BONUSES=$word_bonuses BEAM=$beam_size \
        "$TEMPLATE/decode_score.sh" "$model" \
        "$data/$set" "$(dirname "$model")/decode_$set" "$LANG_DIR/lm3.json" "$data/valid" "${lexicon_opt[@]}"
    done
    for dir in "${as_base[@]}"; do
      echo "$dir/meta.pt kept meta-step 0 (the base model's weights): its decoding and beam weights are the base's"
      rm -rf "$dir/tune_valid" "$dir/decode_$set"
      ln -s ../base/tune_valid "$dir/tune_valid"; ln -s "../base/decode_$set" "$dir/decode_$set"
    done
    # dev draws of --tune-seeds asked for after stage 2 ran: written now (split files are written once, so the
    # existing ones are kept and checked)
    if [ -n "$tune_seeds" ]; then
      python "$TEMPLATE/../../data_prep/splits.py" fewshot --data "$data/dev" --shots $shots \
        --seeds $tune_seeds --out "$data/fewshot_dev" > /dev/null
    fi
    threads_for "$(wc -w <<< "$baselines $meta_algorithms")"
    for method in $baselines $meta_algorithms; do  # adapt-eval keeps work of the same model, schedule, decoding
      model=$exp/base/average.pt; beam_of=$exp/base  # beam_of: whose beam weights (tuned on valid) decode it
      case $method in
        none) args=(--model "$model" --method none) ;;
        finetune|lhuc|adapter) lrs=${method}_lrs
          args=(--model "$model" --method "$method" --tune-lrs ${!lrs}) ;;
        *) model=$exp/meta_$method/meta.pt; args=(--model "$model" --method meta)
          [ "$meta_beam" = base ] || beam_of=$exp/meta_$method ;;
      esac
      eval_opts=(--tune-metric "$tune_metric")
      if [ "$tune_per_k" = true ]; then eval_opts+=(--tune-per-k); fi
      if [ -n "$tune_seeds" ]; then eval_opts+=(--tune-seeds $tune_seeds); fi
      if [ "$adapt_decoding" = beam ]; then
        read -r weight bonus <<< "$(sed -n 's/^best on .*: lm_weight=\([^ ]*\) word_bonus=\([^ ]*\) .*/\1 \2/p' \
          "$beam_of/tune_valid/beam_tuning.txt")"
        eval_opts+=(--lm "$LANG_DIR/lm3.json" --lm-weight "$weight" --word-bonus "$bonus" --beam "$beam_size")
        [ -n "$lexicon" ] && eval_opts+=(--lexicon "$lexicon")
      fi
      spawn speechmeta adapt-eval "${args[@]}" --data "$data/$set" --fewshot "$data/fewshot_$set" --shots $shots \
        --seeds $seeds --tune-data "$data/dev" --tune-fewshot "$data/fewshot_dev" --tune-steps $tune_steps \
        --tune-max-utts "$tune_utts" --tune-out "$exp/tune/$method.json" --out "$out/$method" --device "$device" \
        --no-progress "${eval_opts[@]}"
    done
    wait_all
  done
  touch $exp/.adapt.done
fi

if step 6 /nonexistent; then
  echo "stage 6: report"
  for set in $test_sets; do
    out=$exp/adapt; report=$exp/report
    [ "$set" = test ] || { out=$exp/adapt_$set; report=$exp/report_$set; }
    dirs=()
    for method in $baselines $meta_algorithms; do [ -d "$out/$method" ] && dirs+=("$out/$method"); done
    speechmeta report "${dirs[@]}" --corpus "$corpus${set#test}" --base-model "$exp/base/average.pt" \
      --out "$report"
  done
fi
echo "Done: stages $stage-$stop_stage of $(pwd) (run record: $RUN_DIR)"
