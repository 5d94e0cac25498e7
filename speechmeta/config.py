"""Configuration: dataclass defaults in code, YAML files in `recipes/*/conf/`, dotted overrides on the command line.

`load_config(Config, "conf/train.yaml", ["fbank.num_mel_bins=40"])` builds the dataclass from its defaults, then the
YAML, then the overrides. An unknown key or a value of the wrong type is an error that names the key and the file.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from speechmeta.data.augment import SpecAugmentConfig
from speechmeta.data.fbank import FbankConfig
from speechmeta.data.tokenizer import TextNorm
from speechmeta.model.conformer import ModelConfig

T = TypeVar("T")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class TrainConfig:
    """Initialization learning (ordinary multi-speaker CTC training)."""

    epochs: int = 30
    max_frames: int = 20000  # padded input frames per batch
    lr: float = 1e-3  # peak learning rate, reached after warmup_steps, then decaying as 1/sqrt(step)
    warmup_steps: int = 500
    weight_decay: float = 1e-3
    grad_clip: float = 5.0
    seed: int = 0
    checkpoint_every: int = 0  # also checkpoint every N steps (0: at epoch ends only)
    average_last: int = 3  # average.pt = mean of the last N epoch checkpoints
    sortagrad: bool = True  # first epoch shortest batches first: helps CTC leave the all-blank plateau
    specaug_from_epoch: int = 2  # SpecAugment from this epoch on (1 = always)
    speed_perturb: list[float] = field(default_factory=list)  # e.g. [0.9, 1.0, 1.1]: one factor drawn per batch
    inter_ctc_weight: float = 0.0  # loss = (1 - w) CTC of the output + w mean CTC of model.inter_layers' outputs
    aux_ctc_weight: float = 0.0  # with --aux-units: loss = (1 - w) CTC of the output + w CTC of the auxiliary head
    freq_warp: float = 0.0  # e.g. 0.1: each utterance's mel axis stretched by a factor in [0.9, 1.1] (VTLP)
    valid_max_utts: int = 400  # validation WER on at most this many utterances
    max_steps: int = 0  # stop after this many steps in all (0: no limit)
    device: str = "auto"  # auto: CUDA (bf16 autocast) when present, else CPU
    precision: str = "auto"  # the training step's: auto (bf16 autocast on CUDA, fp32 on CPU), bf16, or fp32
    threads: int = 0  # CPU threads for torch (0: torch's default)


@dataclass(frozen=True)
class MetaConfig:
    """Iterative learning: meta-training where each speaker is a task."""

    algorithm: str = "fomaml"  # fomaml, reptile, metasgd, maml
    param_set: str = "lhuc"  # what adapts to a speaker: all, encoder, lhuc, adapter, norm, bias
    adapter_dim: int = 32
    inner_steps: int = 3
    inner_lr: float = 0.1  # the inner learning rate (Meta-SGD: its initial value, one per tensor, then learned)
    first_order: bool = True  # Meta-SGD only: first-order meta-gradient for the rates (FOMAML/MAML fix their own)
    outer_lr: float = 1e-3
    outer_optimizer: str = "adam"  # adam, or sgd: steps in proportion to the meta-gradient, not one size for all
    rate_lr: float = 0.0  # Meta-SGD: Adam's step size for the inner rates (0: outer_lr, which hardly moves them)
    rates: str = "tensor"  # Meta-SGD's learned inner rates: one per tensor, or "element": one per weight, as in Li et
                           # al. 2017 (as many rates as adapted values)
    speakers_per_batch: int = 4
    shots: int | list[int] = 5  # support utterances per speaker; a list ([5, 10]): each meta-batch draws one K
    query: int = 5  # query utterances per speaker
    specaug: bool = False  # SpecAugment masks (the specaug section) on support and query utterances, as in training
    task_warp: float = 0.0  # e.g. 0.1: each task a new voice, its utterances' mel axes warped by one factor (VTLP)
    dropout: bool = True  # the model's dropout on in meta-training; false: off, as when adapting to a new speaker
    meta_steps: int = 200
    grad_clip: float = 5.0
    checkpoint_every: int = 50
    eval_every: int = 25  # query loss before/after adaptation on fixed validation tasks
    eval_tasks: int = 8
    keep: str = "best"  # meta.pt: "best" (lowest validation query loss after adaptation, early stopping) or "last"
    keep_metric: str = "loss"  # what "best" minimizes: "loss", or "cer" (greedy CER of the adapted query utterances)
    batched: bool | None = None  # all speakers of a meta-batch in one vmap pass instead of a loop; None: on CUDA
                                 # (H200: FOMAML 1.57x, Meta-SGD 1.94x, MAML 2.47x faster a meta-step); on 2 CPU
                                 # cores MAML gained 1.13x and the loop keeps 3x less memory (benchmarks/README.md)
    seed: int = 0
    device: str = "auto"


@dataclass(frozen=True)
class Config:
    """Everything a run is configured by; sections grow with the pipeline."""

    fbank: FbankConfig = field(default_factory=FbankConfig)
    text_norm: TextNorm = field(default_factory=TextNorm)
    cmvn: str = "utterance"  # none, global, speaker or utterance (computed on the fly; best on unseen speakers)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    specaug: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)
    meta: MetaConfig = field(default_factory=MetaConfig)


def _coerce(value: Any, kind: Any, where: str) -> Any:
    """`value` checked against type `kind` (ints are accepted as floats), nested dataclasses built from dicts."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0])
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of {kind.__name__} fields, got {value!r}")
        return from_dict(kind, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict or kind is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if kind is Any:
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is float and isinstance(value, str):  # PyYAML reads 3e-3 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if kind in (int, float, str, bool) and (type(value) is not kind):
        raise ConfigError(f"{where}: expected {kind.__name__}, got {value!r} ({type(value).__name__})")
    return value


def from_dict(cls: type[T], data: dict, where: str = "") -> T:
    """An instance of dataclass `cls` from `data` over its defaults; unknown keys are errors."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(f"unknown config key(s) {', '.join(prefix + k for k in unknown)}; "
                          f"valid keys{' under ' + where if where else ''}: {', '.join(sorted(names))}")
    values = {}
    for name, value in data.items():
        values[name] = _coerce(value, hints[name], f"{where}.{name}" if where else name)
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where or cls.__name__}: {e}") from e


def _set_dotted(data: dict, override: str) -> None:
    if "=" not in override:
        raise ConfigError(f"override '{override}' is not of the form key.subkey=value")
    key, text = override.split("=", 1)
    try:
        value = yaml.safe_load(text) if text else ""
    except yaml.YAMLError:
        raise ConfigError(f"override '{override}': the value is not valid YAML (quote it)") from None
    *parents, last = key.strip().split(".")
    node = data
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override '{override}': '{p}' is not a section")
    node[last] = value


def load_config(cls: type[T] = Config, path: str | os.PathLike | None = None, overrides: list[str] = ()) -> T:
    """Defaults of `cls`, then the YAML file at `path`, then `key.sub=value` overrides (values parsed as YAML)."""
    data: dict = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except yaml.YAMLError as e:  # a syntax error: say where, without the parser's traceback
            mark = getattr(e, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            raise ConfigError(f"{where}: not valid YAML ({getattr(e, 'problem', None) or e}); fix the file's "
                              "indentation or quoting") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        data = loaded or {}
    for override in overrides:
        _set_dotted(data, override)
    try:
        return from_dict(cls, data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}" if path else str(e)) from None


def to_dict(config: Any) -> dict:
    return dataclasses.asdict(config)


def save_config(config: Any, path: str | os.PathLike) -> None:
    """Write the resolved config as YAML (atomically), so a run records exactly what it used."""
    from speechmeta.fileio import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(to_dict(config), sort_keys=False))
