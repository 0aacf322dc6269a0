"""Supernet training (Once-for-All / BigNAS style) with quantization-aware steps, and subnet evaluation.

Each step follows the sandwich rule: the largest subnet learns from the labels; the smallest and
`n_random` random subnets learn from the largest's soft predictions (in-place distillation) plus the labels.
Random subnets are float or quantized (per-block weight / activation bits as the space allows); some steps put
the largest or smallest at a uniform low bit-width, so quantized subnets stay accurate. Each subnet runs at its
own resolution (the batch is resized on the fly). Hidden channels are re-sorted by importance every
`sort_every` epochs (optimizer state permuted with them) so keep-ratio prefixes are the important channels.

A checkpoint is written atomically after every epoch with the optimizer state; `resume=True` continues from
it exactly: the random streams of epoch e are derived from (seed, e), so a resumed run equals an unbroken one.

`evaluate(net, config, data, split)` extracts the subnet, recalibrates its BatchNorm statistics and activation
ranges on a few training batches, and returns top-1 accuracy in percent.
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas.checkpoint import load_supernet, read_checkpoint, save_supernet
from nas.data import DataSet, load_data, resize
from nas.heap import trim_heap
from search_spaces import HwnasError, InputError, SearchSpace, SubnetConfig, get_space
from search_spaces.errors import bad_value
from search_spaces.supernet import Subnet, Supernet, permute, recalibrate

OPTIMIZERS = ("adamw", "sgd")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that fixes a supernet training run (stored in the checkpoint; resume checks it)."""

    space: str
    data: str
    epochs: int
    batch_size: int = 128
    optimizer: str = "adamw"
    lr: float = 4e-3
    weight_decay: float = 5e-5
    warmup_epochs: float = 1.0  # linear learning-rate warm-up, then cosine decay to zero
    seed: int = 0
    data_seed: int = 0
    holdout: float = 0.2  # fractions of the pooled images (load_data); a larger holdout gives steadier labels
    test: float = 0.2
    n_random: int = 2
    kd_weight: float = 0.5  # student loss = kd_weight * KL(teacher || student) + (1 - kd_weight) * CE
    kd_temperature: float = 1.0
    label_smoothing: float = 0.1
    quant_prob: float = 0.5  # probability that a random subnet is sampled with quantized blocks
    extreme_quant_prob: float = 0.2  # probability that a slot is the largest / smallest at a uniform low bit-width
    sort_every: int = 1  # epochs between channel importance re-sorting (0: never)
    largest_only_epochs: int = 0  # progressive shrinking lite: first epochs train the full network only
    augment: bool = True
    grad_clip: float = 5.0

    def __post_init__(self) -> None:
        def need(field: str, ok: bool, allowed: str) -> None:
            if not ok:
                raise bad_value(field, getattr(self, field), allowed)

        need("epochs", isinstance(self.epochs, int) and self.epochs >= 1, "an integer >= 1")
        need("batch_size", isinstance(self.batch_size, int) and self.batch_size >= 2, "an integer >= 2")
        need("optimizer", self.optimizer in OPTIMIZERS, f"one of {', '.join(OPTIMIZERS)}")
        need("lr", math.isfinite(self.lr) and self.lr > 0, "a finite positive number")
        need("holdout", 0 < self.holdout < 0.5, "a fraction in (0, 0.5)")
        need("test", 0 < self.test < 0.5, "a fraction in (0, 0.5)")
        need("weight_decay", self.weight_decay >= 0, "a number >= 0")
        need("warmup_epochs", self.warmup_epochs >= 0, "a number >= 0")
        need("n_random", isinstance(self.n_random, int) and self.n_random >= 0, "an integer >= 0")
        need("kd_weight", 0 <= self.kd_weight <= 1, "a number in [0, 1]")
        need("kd_temperature", math.isfinite(self.kd_temperature) and self.kd_temperature > 0, "a finite positive number")
        need("label_smoothing", 0 <= self.label_smoothing < 1, "a number in [0, 1)")
        need("quant_prob", 0 <= self.quant_prob <= 1, "a probability in [0, 1]")
        need("extreme_quant_prob", 0 <= self.extreme_quant_prob <= 1, "a probability in [0, 1]")
        need("sort_every", isinstance(self.sort_every, int) and self.sort_every >= 0, "an integer >= 0")
        need("largest_only_epochs", isinstance(self.largest_only_epochs, int) and self.largest_only_epochs >= 0,
             "an integer >= 0")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# ---- evaluation -----------------------------------------------------------------------------------------
def calibration_batches(data: DataSet, resolution: int, n_batches: int = 8, batch_size: int = 128,
                        seed: int = 0) -> list[torch.Tensor]:
    """The same `n_batches` training batches (no augmentation) for every subnet at this resolution."""
    g = torch.Generator().manual_seed(seed)
    return [x for x, _ in data.batches("train", resolution, batch_size, shuffle=True, generator=g, limit=n_batches)]


@torch.no_grad()
def correct_mask(model: nn.Module, data: DataSet, split: str, resolution: int, batch_size: int = 512) -> torch.Tensor:
    """Per image of the split (in its stored order): did `model` (eval mode expected) classify it right."""
    hits = [model(x).argmax(1) == y for x, y in data.batches(split, resolution, batch_size)]
    return torch.cat(hits) if hits else torch.zeros(0, dtype=torch.bool)


def percent_correct(hits: torch.Tensor) -> float:
    return 100.0 * float(hits.float().mean()) if len(hits) else 0.0


def accuracy(model: nn.Module, data: DataSet, split: str, resolution: int, batch_size: int = 512) -> float:
    """Top-1 accuracy in percent of `model` (as it is: eval mode expected) on a split."""
    return percent_correct(correct_mask(model, data, split, resolution, batch_size))


def half_accuracies(hits: torch.Tensor) -> tuple[float, float]:
    """Top-1 on the even and on the odd images of a split: two independent measurements of the same subnet, whose
    agreement across subnets says how much of the label is noise (`predictors.label_reliability`). A split keeps the
    data set's own image order (its members are a class-stratified draw), so both halves hold every class."""
    return percent_correct(hits[0::2]), percent_correct(hits[1::2])


def check_compatible(net: Supernet, data: DataSet) -> None:
    s = net.spec
    if data.num_classes != s.num_classes:
        raise InputError(f"data: {data.name} has {data.num_classes} classes, the supernet {s.num_classes} "
                         f"(train a supernet on this data set)")
    if data.channels != s.in_channels:
        raise InputError(f"data: {data.name} delivers {data.channels} channels, the supernet takes {s.in_channels} "
                         f"(load the data with in_channels={s.in_channels})")


def prepare_subnet(net: Supernet | Subnet, config: SubnetConfig, data: DataSet, calib_batches: int = 8,
                   calib_batch_size: int = 128, seed: int = 0) -> Subnet:
    """The standalone subnet of `config`, BN statistics and activation ranges recalibrated, in eval mode."""
    if isinstance(net, Supernet):
        check_compatible(net, data)
        sub = net.extract(config)
    elif isinstance(net, Subnet):
        if net.config != config:
            raise InputError("config: differs from the given subnet's own config")
        sub = net
    else:
        raise bad_value("net", type(net).__name__, "a Supernet or a Subnet")
    recalibrate(sub, calibration_batches(data, config.resolution, calib_batches, calib_batch_size, seed))
    return sub.eval()


def evaluate(net: Supernet | Subnet, config: SubnetConfig, data: DataSet, split: str = "test",
             calib_batches: int = 8, calib_batch_size: int = 128, seed: int = 0) -> float:
    """Top-1 accuracy (percent, 0-100) of the subnet `config` on `split`, as extracted with BN statistics and
    activation ranges recalibrated on `calib_batches` fixed training batches (the supernet is not modified)."""
    return evaluate_detailed(net, config, data, split, calib_batches, calib_batch_size, seed)["accuracy"]


def evaluate_detailed(net: Supernet | Subnet, config: SubnetConfig, data: DataSet, split: str = "test",
                      calib_batches: int = 8, calib_batch_size: int = 128, seed: int = 0) -> dict[str, Any]:
    """`evaluate`, plus the top-1 of each half of the split ({"accuracy", "accuracy_halves"})."""
    sub = prepare_subnet(net, config, data, calib_batches, calib_batch_size, seed)
    hits = correct_mask(sub, data, split, config.resolution)
    del sub
    trim_heap()  # each config leaves differently shaped buffers behind (see nas.heap)
    return {"accuracy": percent_correct(hits), "accuracy_halves": half_accuracies(hits)}


def reference_configs(space: SearchSpace, n_random: int = 0, seed: int = 0) -> dict[str, SubnetConfig]:
    """largest / smallest, float and uniformly 8-bit (w8a8) and 4-bit weights (w4a8), plus random ones."""
    out: dict[str, SubnetConfig] = {}
    for name in ("largest", "smallest"):
        base = getattr(space, name)()
        out[name] = base
        out[f"{name}-w8a8"] = base.with_bits(8, 8)
        out[f"{name}-w4a8"] = base.with_bits(4, 8)
    rng = np.random.default_rng(seed)
    for i in range(n_random):
        c = space.sample(rng, quantize=False)
        out[f"random{i}"] = c
        out[f"random{i}-w8a8"] = c.with_bits(8, 8)
    return out


def evaluate_references(net: Supernet, data: DataSet, split: str = "test", n_random: int = 0,
                        seed: int = 0) -> dict[str, float]:
    space = get_space(net.spec.name, num_classes=net.spec.num_classes, in_channels=net.spec.in_channels)
    return {name: evaluate(net, c, data, split) for name, c in reference_configs(space, n_random, seed).items()}


# ---- training -------------------------------------------------------------------------------------------------
def _kd_loss(student: torch.Tensor, teacher_prob: torch.Tensor, t: float) -> torch.Tensor:
    return F.kl_div(F.log_softmax(student / t, dim=1), teacher_prob, reduction="batchmean") * (t * t)


def _param_groups(net: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, p in net.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.dim() <= 1 or "kernel_transforms" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(net: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    groups = _param_groups(net, cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def lr_at(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    total = cfg.epochs * steps_per_epoch
    warm = int(cfg.warmup_epochs * steps_per_epoch)
    if step < warm:
        return cfg.lr * (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return 0.5 * cfg.lr * (1 + math.cos(math.pi * min(1.0, t)))


@torch.no_grad()
def sort_channels(net: Supernet, optimizer: torch.optim.Optimizer | None = None) -> None:
    """`net.sort_channels()`, permuting the optimizer's per-parameter state (momentum, Adam moments) the same
    way so training continues as if nothing moved."""
    applied = net.sort_channels()
    if optimizer is None:
        return
    for p, dims in applied:
        state = optimizer.state.get(p) if isinstance(p, torch.nn.Parameter) else None
        for k, v in list((state or {}).items()):
            if isinstance(v, torch.Tensor) and v.shape == p.shape:
                state[k] = permute(v, dims)


class SubnetSampler:
    """Chooses the subnets of one sandwich step from a numpy Generator."""

    def __init__(self, space: SearchSpace, cfg: TrainConfig) -> None:
        self.space, self.cfg = space, cfg
        self.largest, self.smallest = space.largest(), space.smallest()
        self.low_bits = [p for p in space.bit_pairs if p != (32, 32)]

    def students(self, rng: np.random.Generator) -> list[SubnetConfig]:
        cfg = self.cfg
        out = [self.smallest]
        for _ in range(cfg.n_random):
            if self.low_bits and rng.random() < cfg.extreme_quant_prob:
                base = self.largest if rng.random() < 0.5 else self.smallest
                w, a = self.low_bits[int(rng.integers(len(self.low_bits)))]
                out.append(base.with_bits(w, a))
            else:
                out.append(self.space.sample(rng, quantize=bool(rng.random() < cfg.quant_prob)))
        return out


@dataclass
class TrainResult:
    path: Path
    epochs_done: int
    history: list[dict[str, Any]]
    seconds: float


def _epoch_streams(cfg: TrainConfig, epoch: int) -> tuple[np.random.Generator, torch.Generator]:
    rng = np.random.default_rng([cfg.seed, epoch, 17])
    g = torch.Generator().manual_seed(int(np.random.default_rng([cfg.seed, epoch, 29]).integers(2**62)))
    return rng, g


def set_threads(threads: int | None) -> None:
    n = threads or min(4, os.cpu_count() or 1)
    torch.set_num_threads(max(1, n))


def train_supernet(cfg: TrainConfig, out: str | os.PathLike[str], resume: bool = False, overwrite: bool = False,
                   progress: bool = True, threads: int | None = None,
                   on_epoch: Callable[[dict[str, Any]], None] | None = None,
                   data: DataSet | None = None) -> TrainResult:
    """Train a supernet for `cfg.epochs` epochs, checkpointing to `out` after each; `resume` continues the run
    stored in `out` (same space, data and seed). Returns the per-epoch history."""
    out = Path(out)
    set_threads(threads)
    space0 = get_space(cfg.space)  # unknown space fails here, before any data is loaded
    if out.exists() and not (resume or overwrite):
        raise InputError(f"--out: {out} exists, allowed: a new path, or --resume to continue it")
    if out.is_dir():
        raise InputError(f"--out: {out} is a directory, allowed: a checkpoint file path")
    if data is None:
        data = load_data(cfg.data, seed=cfg.data_seed, in_channels=space0.spec.in_channels,
                         holdout=cfg.holdout, test=cfg.test, image_size=max(space0.spec.resolutions))
    space = get_space(cfg.space, num_classes=data.num_classes, in_channels=data.channels)
    torch.manual_seed(cfg.seed)
    net = space.build_supernet()  # seeded initialisation
    optimizer = make_optimizer(net, cfg)
    start_epoch, history, seconds = 0, [], 0.0
    if resume and out.exists():
        payload = read_checkpoint(out)
        state = payload.get("train_state")
        if not isinstance(state, dict):
            raise InputError(f"--resume: {out} has no training state (a finished export?), allowed: a checkpoint "
                             "written by hwnas supernet train")
        old = TrainConfig.from_dict(state["config"])
        for f in ("space", "data", "seed", "data_seed", "holdout", "test", "batch_size", "optimizer"):
            if getattr(old, f) != getattr(cfg, f):
                raise InputError(f"--resume: {f} got {getattr(cfg, f)!r}, allowed: {getattr(old, f)!r} "
                                 f"(what {out} was trained with)")
        net.load_state_dict(payload["state_dict"])
        optimizer.load_state_dict(payload["optimizer"])
        start_epoch = int(state["epoch"])
        history = list(state.get("history", []))
        seconds = float(state.get("seconds", 0.0))
    sampler = SubnetSampler(space, cfg)
    res_max = max(space.spec.resolutions)
    x_all, _ = data.at("train", res_max)
    steps_per_epoch = math.ceil(len(x_all) / cfg.batch_size)
    teacher = space.largest()
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        rng, g = _epoch_streams(cfg, epoch)
        torch.manual_seed(int(rng.integers(2**62)))  # dropout draws from the global stream: seed it per epoch too
        if cfg.sort_every and epoch > 0 and epoch % cfg.sort_every == 0 and epoch >= cfg.largest_only_epochs:
            sort_channels(net, optimizer)
        net.train()
        only_largest = epoch < cfg.largest_only_epochs
        stats = {"loss": 0.0, "student_loss": 0.0, "correct": 0, "seen": 0}
        batches = data.batches("train", res_max, cfg.batch_size, shuffle=True, generator=g, augment=cfg.augment)
        bar = _bar(progress, steps_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}")
        for i, (x, y) in enumerate(batches):
            step = epoch * steps_per_epoch + i
            for group in optimizer.param_groups:
                group["lr"] = lr_at(cfg, step, steps_per_epoch)
            optimizer.zero_grad(set_to_none=True)
            net.set_active(teacher)
            logits = net(x)
            loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
            _check_finite(loss, epoch, i, cfg)
            loss.backward()
            stats["loss"] += float(loss.detach()) * len(y)
            stats["correct"] += int((logits.argmax(1) == y).sum())
            stats["seen"] += len(y)
            if not only_largest:
                soft = F.softmax(logits.detach() / cfg.kd_temperature, dim=1)
                students = sampler.students(rng)
                s_loss = 0.0
                for c in students:
                    net.set_active(c)
                    xs = x if c.resolution == res_max else resize(x, c.resolution)
                    out_s = net(xs)
                    ls = cfg.kd_weight * _kd_loss(out_s, soft, cfg.kd_temperature)
                    if cfg.kd_weight < 1:
                        ls = ls + (1 - cfg.kd_weight) * F.cross_entropy(out_s, y, label_smoothing=cfg.label_smoothing)
                    _check_finite(ls, epoch, i, cfg)
                    ls.backward()
                    s_loss += float(ls.detach())
                stats["student_loss"] += s_loss / len(students) * len(y)
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            optimizer.step()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{stats['loss'] / stats['seen']:.3f}",
                                acc=f"{100 * stats['correct'] / stats['seen']:.1f}")
        if bar is not None:
            bar.close()
        n = max(1, stats["seen"])
        seconds += time.perf_counter() - t0
        record = {"epoch": epoch + 1, "loss": stats["loss"] / n, "student_loss": stats["student_loss"] / n,
                  "train_acc": 100.0 * stats["correct"] / n, "lr": optimizer.param_groups[0]["lr"],
                  "seconds": round(seconds, 2)}
        history.append(record)
        _save(out, net, cfg, optimizer, epoch + 1, history, seconds)
        if on_epoch is not None:
            on_epoch(record)
    if start_epoch >= cfg.epochs and not out.exists():  # nothing to do but the file must exist
        _save(out, net, cfg, optimizer, start_epoch, history, seconds)
    return TrainResult(out, max(start_epoch, cfg.epochs), history, seconds)


def _check_finite(loss: torch.Tensor, epoch: int, step: int, cfg: TrainConfig) -> None:
    """Stop at the first non-finite loss: training on would only save a checkpoint of NaNs (the last one written,
    from the end of the previous epoch, stays as it was)."""
    if not bool(torch.isfinite(loss.detach())):
        raise HwnasError(f"training diverged: the loss is {float(loss.detach())} at epoch {epoch + 1}, step {step + 1} "
                         f"(lr {cfg.lr:g}); lower --lr (or --kd-weight) and train again")


def _save(out: Path, net: Supernet, cfg: TrainConfig, optimizer: torch.optim.Optimizer, epoch: int,
          history: list[dict[str, Any]], seconds: float) -> None:
    if not all(bool(torch.isfinite(p).all()) for p in net.parameters()):
        raise HwnasError(f"training diverged: non-finite weights at the end of epoch {epoch}; not saving {out} "
                         f"(lr {cfg.lr:g}); lower --lr and train again")
    meta = {"data": cfg.data, "data_seed": cfg.data_seed, "holdout": cfg.holdout, "test": cfg.test, "epochs": epoch,
            "train_config": cfg.to_dict(), "train_seconds": round(seconds, 2)}
    extra = {"optimizer": optimizer.state_dict(),
             "train_state": {"epoch": epoch, "config": cfg.to_dict(), "history": history, "seconds": seconds}}
    save_supernet(out, net, meta, extra)


def _bar(progress: bool, total: int, desc: str):  # type: ignore[no-untyped-def]
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)


def load_for_eval(path: str | os.PathLike[str], data_name: str | None = None, space: str | None = None,
                  data_seed: int | None = None) -> tuple[Supernet, DataSet, dict[str, Any]]:
    """(supernet, data it was trained on or `data_name`, meta) ready for `evaluate`."""
    net, meta = load_supernet(path, space=space)
    name = data_name or meta.get("data")
    if not name:
        raise InputError(f"--data: {path} does not record its data set, allowed: give --data NAME")
    seed = meta.get("data_seed", 0) if data_seed is None else data_seed
    # checkpoints from before --holdout / --test were trained on the defaults
    holdout, test = (float(meta.get(k, getattr(TrainConfig, k))) for k in ("holdout", "test"))
    data = load_data(name, seed=int(seed), in_channels=net.spec.in_channels, holdout=holdout, test=test,
                     image_size=max(net.spec.resolutions))
    check_compatible(net, data)
    return net, data, meta


__all__ = ["TrainConfig", "TrainResult", "accuracy", "calibration_batches", "correct_mask", "evaluate",
           "evaluate_detailed", "evaluate_references", "half_accuracies",
           "load_for_eval", "prepare_subnet", "reference_configs", "sort_channels", "train_supernet"]
