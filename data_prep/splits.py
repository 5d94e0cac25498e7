#!/usr/bin/env python3
"""Speaker splits and few-shot splits, written once as files so every method is scored on the same utterances.

`speakers`: hold N speakers of a data dir out (optionally balanced over a speaker attribute such as children/adults
in spk2age), writing two data dirs.

`copy`: a data dir copied elsewhere, relative audio paths rewritten (a user's data dir is never written into).

`fewshot`: for each held-out speaker, nested support lists for K in --shots (the K=3 list holds the K=1 list) and one
disjoint test list shared by every K, for each seed:
    OUT/support.k{K}.seed{S}   spk utt1 ... uttK      (spk2utt format)
    OUT/test.seed{S}           spk utt ...
    OUT/excluded.seed{S}       spk K reason           (speakers too small for that K)
Same inputs give the same files; existing files that differ are never overwritten (remove OUT to redo them).

    python data_prep/splits.py speakers --data data/so762/train --heldout 25 --balance-by spk2age:18 \\
        --out-train data/so762/train_spk --out-heldout data/so762/heldout
    python data_prep/splits.py fewshot --data data/so762/heldout --shots 1 3 5 10 --seeds 0 1 2 --out data/so762/fewshot
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from speechmeta.data.datadir import DataDir, read_table
from speechmeta.data.subset import subset_data_dir
from speechmeta.fileio import atomic_write_lines


def heldout_speakers(data: DataDir, num: int, seed: int, balance_by: str | None = None) -> list[str]:
    """`num` speakers chosen at random from `seed`; with `balance_by` (`FILE` or `FILE:THRESHOLD` for numbers such as
    ages) in proportion to each group's share of speakers."""
    spks = data.spks
    if not 0 < num < len(spks):
        raise ValueError(f"cannot hold out {num} of {len(spks)} speakers")
    groups: dict[str, list[str]] = {"all": spks}
    if balance_by:
        name, _, threshold = balance_by.partition(":")
        values = {e.key: e.value for e in read_table(data.path / name).entries}
        missing = [s for s in spks if s not in values]
        if missing:
            raise ValueError(f"{data.path / name}: no value for speaker(s) {', '.join(missing[:5])}")
        if threshold:
            groups = {}
            for s in spks:
                groups.setdefault("below" if float(values[s]) < float(threshold) else "above", []).append(s)
        else:
            groups = {}
            for s in spks:
                groups.setdefault(values[s], []).append(s)
    rng = random.Random(seed)
    chosen: list[str] = []
    remaining = num
    for i, (_, members) in enumerate(sorted(groups.items())):
        take = remaining if i == len(groups) - 1 else round(num * len(members) / len(spks))
        take = min(take, len(members))
        chosen += rng.sample(sorted(members), take)
        remaining -= take
    return sorted(chosen)


def fewshot_lists(data: DataDir, shots: list[int], seed: int, min_test: int, max_test: int | None
                  ) -> tuple[dict[int, list[str]], list[str], list[str]]:
    """(K -> support lines, test lines, excluded lines) for one seed."""
    shots = sorted(set(shots))
    support: dict[int, list[str]] = {k: [] for k in shots}
    test, excluded = [], []
    for spk in data.spks:
        utts = sorted(data.spk2utt[spk])
        random.Random(f"{seed}/{spk}").shuffle(utts)
        fitting = [k for k in shots if len(utts) - k >= min_test]
        for k in shots:
            if k not in fitting:
                excluded.append(f"{spk} {k} only {len(utts)} utterances, need {k} support + {min_test} test")
        if not fitting:
            continue
        pool = max(fitting)
        held = utts[pool:] if max_test is None else utts[pool:pool + max_test]
        test.append(f"{spk} {' '.join(sorted(held))}")
        for k in fitting:
            support[k].append(f"{spk} {' '.join(utts[:k])}")
    return support, test, excluded


def _write_once(path: Path, lines: list[str]) -> None:
    text = "".join(line + "\n" for line in lines)
    if path.exists():
        if path.read_text() != text:
            raise FileExistsError(f"{path} exists with other content; remove it to make new splits")
        return
    atomic_write_lines(path, lines)


def write_fewshot(data_dir: Path, out: Path, shots: list[int], seeds: list[int], min_test: int = 5,
                  max_test: int | None = None) -> list[str]:
    """Write the split files; returns the excluded lines (also written) so callers can report them."""
    data = DataDir.load(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    reported = []
    for seed in seeds:
        support, test, excluded = fewshot_lists(data, shots, seed, min_test, max_test)
        for k, lines in support.items():
            _write_once(out / f"support.k{k}.seed{seed}", lines)
        _write_once(out / f"test.seed{seed}", test)
        _write_once(out / f"excluded.seed{seed}", excluded)
        reported += [f"seed {seed}: {line}" for line in excluded]
    return reported


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("speakers", help="hold speakers out of a data dir")
    s.add_argument("--data", type=Path, required=True)
    which = s.add_mutually_exclusive_group(required=True)
    which.add_argument("--heldout", type=int, help="number of speakers to hold out, chosen at random from --seed")
    which.add_argument("--heldout-list", nargs="+", metavar="SPK", help="these speakers are held out")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--balance-by", help="speaker file to balance over, e.g. spk2gender or spk2age:18")
    s.add_argument("--out-train", type=Path, required=True)
    s.add_argument("--out-heldout", type=Path, required=True)
    c = sub.add_parser("copy", help="copy a data dir, relative audio paths rewritten for the new place")
    c.add_argument("--data", type=Path, required=True)
    c.add_argument("--out", type=Path, required=True)
    f = sub.add_parser("fewshot", help="support/test lists per held-out speaker")
    f.add_argument("--data", type=Path, required=True, help="data dir of the held-out speakers")
    f.add_argument("--shots", type=int, nargs="+", default=[1, 3, 5, 10])
    f.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    f.add_argument("--min-test", type=int, default=5, help="fewest test utterances a speaker may have")
    f.add_argument("--max-test", type=int, help="at most this many test utterances per speaker")
    f.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if args.command == "speakers":
        data = DataDir.load(args.data)
        held = sorted(args.heldout_list) if args.heldout_list else \
            heldout_speakers(data, args.heldout, args.seed, args.balance_by)
        subset_data_dir(args.data, args.out_heldout, held)
        subset_data_dir(args.data, args.out_train, [s for s in data.spks if s not in set(held)])
        print(f"{args.out_heldout}: {len(held)} held-out speakers: {' '.join(held)}")
        print(f"{args.out_train}: {len(data.spks) - len(held)} speakers")
    elif args.command == "copy":
        subset_data_dir(args.data, args.out, DataDir.load(args.data).spks)
        print(f"{args.out}: copy of {args.data}")
    else:
        excluded = write_fewshot(args.data, args.out, args.shots, args.seeds, args.min_test, args.max_test)
        for line in excluded:
            print(f"excluded {line}", file=sys.stderr)
        print(f"{args.out}: shots {args.shots}, seeds {args.seeds}, {len(excluded)} (speaker, K, seed) exclusion(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
