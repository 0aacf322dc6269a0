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

import hashlib
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
from nas.device import CPU, Runtime, tensors_to_cpu
from nas.folder_data import FolderData
from nas.heap import trim_heap
from nas.train_config import TrainConfig
from search_spaces import FamilyConfig, HwnasError, InputError, SearchSpace, SubnetConfig, get_space
from search_spaces.errors import bad_value
from search_spaces.layers import fold_batchnorm
from search_spaces.supernet import Subnet, Supernet, permute, recalibrate

AnyData = DataSet | FolderData  # in memory, or streamed from a folder


# ---- evaluation -----------------------------------------------------------------------------------------
def calibration_batches(data: AnyData, resolution: int, n_batches: int = 8, batch_size: int = 128,
                        seed: int = 0, runtime: Runtime = CPU) -> list[torch.Tensor]:
    """The same `n_batches` training batches (no augmentation) for every subnet at this resolution, on the
    runtime's device."""
    g = torch.Generator().manual_seed(seed)
    return [runtime.put(x)[0] for x, _ in data.batches("train", resolution, batch_size, shuffle=True, generator=g,
                                                        limit=n_batches, pin_memory=runtime.cuda)]


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    """A batch of images in channels_last, the layout the networks are kept in (`prepare_subnet`, `train_supernet`); other
    inputs (vit's tokens) as they are."""
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


@torch.no_grad()
def correct_mask(model: nn.Module, data: AnyData, split: str, resolution: int, batch_size: int = 512,
                 runtime: Runtime = CPU, max_images: int | None = None, skip_images: int = 0) -> torch.Tensor:
    """Per image of the split (in its stored order; images [skip_images, skip_images + max_images) of it): did
    `model` (eval mode expected, on the runtime's device) classify it right. Skipped images are not run. Returned
    on the CPU."""
    hits, start = [], 0
    end = None if max_images is None else skip_images + max_images
    for x, y in data.batches(split, resolution, batch_size, pin_memory=runtime.cuda):
        lo, hi = max(skip_images - start, 0), len(y) if end is None else min(len(y), end - start)
        start += len(y)
        if hi > lo:
            x, y = runtime.put(x[lo:hi], y[lo:hi])
            with runtime.autocast():
                hits.append((model(_nhwc(x)).argmax(1) == y).cpu())
        if end is not None and start >= end:
            break
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


def check_compatible(net: Supernet, data: AnyData) -> None:
    s = net.spec
    if data.num_classes != s.num_classes:
        raise InputError(f"data: {data.name} has {data.num_classes} classes, the supernet {s.num_classes} "
                         f"(train a supernet on this data set)")
    if data.channels != s.in_channels:
        raise InputError(f"data: {data.name} delivers {data.channels} channels, the supernet takes {s.in_channels} "
                         f"(load the data with in_channels={s.in_channels})")


def prepare_subnet(net: Supernet | Subnet, config: SubnetConfig, data: AnyData, calib_batches: int = 8,
                   calib_batch_size: int = 128, seed: int = 0, runtime: Runtime = CPU) -> Subnet:
    """The standalone subnet of `config` on the runtime's device, BN statistics and activation ranges recalibrated
    there (in float32: statistics are sums that bf16 would round), in eval mode."""
    if callable(getattr(net, "extract", None)):  # any family's supernet
        check_compatible(net, data)
        sub = net.extract(config)
    elif isinstance(getattr(net, "config", None), FamilyConfig):  # an extracted subnet
        if net.config != config:
            raise InputError("config: differs from the given subnet's own config")
        sub = net
    else:
        raise bad_value("net", type(net).__name__, "a supernet or an extracted subnet")
    # channels_last: the same predictions, 1.2-1.9x faster evaluation of mbv3-tiny at 32 px on this CPU (fake-quant
    # and float subnets, measured on 3,000 shapes images); it changes only 4-D tensors (vit: the patch embedding)
    sub = sub.to(runtime.device, memory_format=torch.channels_last)
    recalibrate(sub, calibration_batches(data, config.resolution, calib_batches, calib_batch_size, seed, runtime))
    return sub.eval()


def evaluate(net: Supernet | Subnet, config: SubnetConfig, data: AnyData, split: str = "test",
             calib_batches: int = 8, calib_batch_size: int = 128, seed: int = 0, runtime: Runtime = CPU,
             max_images: int | None = None, skip_images: int = 0) -> float:
    """Top-1 accuracy (percent, 0-100) of the subnet `config` on `split` (its `max_images` images after the first
    `skip_images`), as extracted with BN statistics and activation ranges recalibrated on `calib_batches` fixed
    training batches (the supernet is not modified)."""
    return evaluate_detailed(net, config, data, split, calib_batches, calib_batch_size, seed, runtime,
                             max_images, skip_images)["accuracy"]


def evaluate_detailed(net: Supernet | Subnet, config: SubnetConfig, data: AnyData, split: str = "test",
                      calib_batches: int = 8, calib_batch_size: int = 128, seed: int = 0,
                      runtime: Runtime = CPU, max_images: int | None = None,
                      skip_images: int = 0) -> dict[str, Any]:
    """`evaluate` (on images [skip_images, skip_images + max_images) of the split), plus the top-1 of each half of
    those images ({"accuracy", "accuracy_halves", "n_images"})."""
    sub = prepare_subnet(net, config, data, calib_batches, calib_batch_size, seed, runtime)
    if sub is not net:  # a fresh extraction, not the caller's subnet
        fold_batchnorm(sub)
    hits = correct_mask(sub, data, split, config.resolution, runtime=runtime, max_images=max_images,
                        skip_images=skip_images)
    del sub
    trim_heap()  # each config leaves differently shaped buffers behind (see nas.heap)
    return {"accuracy": percent_correct(hits), "accuracy_halves": half_accuracies(hits), "n_images": len(hits)}


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


def evaluate_references(net: Supernet, data: AnyData, split: str = "test", n_random: int = 0,
                        seed: int = 0, runtime: Runtime = CPU, max_images: int | None = None,
                        calib_batches: int = 8) -> dict[str, float]:
    space = get_space(net.spec.name, num_classes=net.spec.num_classes, in_channels=net.spec.in_channels)
    return {name: evaluate(net, c, data, split, calib_batches, runtime=runtime, max_images=max_images)
            for name, c in reference_configs(space, n_random, seed).items()}


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


@dataclass
class Shard:
    """This process's part of a data-parallel run (Ray Train): its rank, the world size, and how gradients are
    averaged across the workers after a step's backward passes."""

    rank: int
    world: int
    average_gradients: Callable[[nn.Module], None]
    # after each epoch: (checkpoint path, record, writer of the checkpoint) -> report it
    save: Callable[[Path, dict[str, Any], Callable[[], None]], None] | None = None


def step_resolution(space: SearchSpace, cfg: TrainConfig, epoch: int, elastic: bool) -> Callable[[int], int]:
    """The resolution of each batch of an epoch: the largest for in-memory data (subnets resize it to theirs);
    for streamed data one drawn per step from the space's resolutions, as Once-for-All does, the same on every
    worker (seeded by (seed, epoch, step))."""
    res = list(space.spec.resolutions)
    if not elastic:
        return lambda _b: res[-1]
    return lambda b: res[int(np.random.default_rng([cfg.seed, epoch, b, 41]).integers(len(res)))]


def load_training_data(cfg: TrainConfig, in_channels: int, data_workers: int = 0,
                       normalization: dict[str, list[float]] | None = None) -> AnyData:
    space0 = get_space(cfg.space)
    return load_data(cfg.data, seed=cfg.data_seed, in_channels=in_channels, holdout=cfg.holdout, test=cfg.test,
                     image_size=max(space0.spec.resolutions), workers=data_workers, normalization=normalization)


def train_supernet(cfg: TrainConfig, out: str | os.PathLike[str], resume: bool = False, overwrite: bool = False,
                   progress: bool = True, threads: int | None = None,
                   on_epoch: Callable[[dict[str, Any]], None] | None = None,
                   data: AnyData | None = None, runtime: Runtime = CPU, data_workers: int = 0,
                   init_from: str | os.PathLike[str] | None = None, shard: Shard | None = None,
                   resume_payload: dict[str, Any] | None = None) -> TrainResult:
    """Train a supernet for `cfg.epochs` epochs, checkpointing to `out` after each; `resume` continues the run
    stored in `out` (same space, data and seed). Returns the per-epoch history.

    `runtime`: device and autocast; `data_workers`: DataLoader processes for streamed folders; `init_from`: start
    from this supernet's weights (e.g. an imported Once-for-All supernet, for quantization-aware fine-tuning);
    `shard`: this process is one worker of a data-parallel run (`nas.distributed_train`), training on its shard of
    every epoch; `resume_payload`: the checkpoint to resume from when it does not lie at `out`."""
    out = Path(out)
    set_threads(threads)
    space0 = get_space(cfg.space)  # unknown space fails here, before any data is loaded
    if shard is None and out.exists() and not (resume or overwrite):
        raise InputError(f"out: {out} exists, allowed: a new path, or `resume` to continue it")
    if out.is_dir():
        raise InputError(f"out: {out} is a directory, allowed: a checkpoint file path")
    init_payload = read_checkpoint(init_from) if init_from is not None else None
    if data is None:
        norm = (init_payload or {}).get("meta", {}).get("normalization")
        data = load_training_data(cfg, space0.spec.in_channels, data_workers, norm)
    space = get_space(cfg.space, num_classes=data.num_classes, in_channels=data.channels)
    # channels_last: 1.5x less CPU per sandwich step of mbv3-tiny at 32 px on this machine (its depthwise convs);
    # only 4-D weights change layout (vit: the patch embedding), and a checkpoint loads into either layout
    net = _initial_net(cfg, space, init_payload, init_from).to(runtime.device, memory_format=torch.channels_last)
    optimizer = make_optimizer(net, cfg)
    scaler = runtime.grad_scaler()
    payload = resume_payload if resume_payload is not None else (
        read_checkpoint(out) if resume and out.exists() else None)
    start_epoch, history, seconds = _resume_state(payload, cfg, out, net, optimizer)
    run = _Run(cfg, space, data, net, optimizer, scaler, runtime, shard, SubnetSampler(space, cfg))
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        record = _train_epoch(run, epoch, progress)
        seconds += time.perf_counter() - t0
        record["seconds"] = round(seconds, 2)
        history.append(record)
        if shard is None:
            _save(out, net, cfg, optimizer, epoch + 1, history, seconds, data, runtime)
        elif shard.save is not None:  # checks and reports; calls the writer on rank 0
            shard.save(out, record, lambda: _save(out, net, cfg, optimizer, epoch + 1, history, seconds, data,
                                                  runtime))
        if on_epoch is not None:
            on_epoch(record)
    if shard is None and start_epoch >= cfg.epochs and not out.exists():  # nothing to do but the file must exist
        _save(out, net, cfg, optimizer, start_epoch, history, seconds, data, runtime)
    return TrainResult(out, max(start_epoch, cfg.epochs), history, seconds)


def _initial_net(cfg: TrainConfig, space: SearchSpace, init_payload: dict[str, Any] | None,
                 init_from: str | os.PathLike[str] | None) -> Supernet:
    """The seeded initialisation, or the weights of the `init_from` supernet."""
    torch.manual_seed(cfg.seed)
    net = space.build_supernet()
    if init_payload is not None:
        if init_payload["space"] != cfg.space:
            raise InputError(f"init_from: {init_from} is a supernet of space {init_payload['space']!r}, "
                             f"allowed: one of {cfg.space!r}")
        try:
            net.load_state_dict(init_payload["state_dict"])
        except RuntimeError as e:
            raise InputError(f"init_from: {init_from} does not fit this data set's supernet "
                             f"({str(e).splitlines()[0]})") from None
    return net


def _resume_state(payload: dict[str, Any] | None, cfg: TrainConfig, out: Path, net: Supernet,
                  optimizer: torch.optim.Optimizer) -> tuple[int, list[dict[str, Any]], float]:
    """(first epoch, history, seconds so far); a checkpoint to resume from loads its weights and optimizer state,
    once its settings are the run's."""
    if payload is None:
        return 0, [], 0.0
    state = payload.get("train_state")
    if not isinstance(state, dict):
        raise InputError(f"resume: {out} has no training state (a finished export?), allowed: a checkpoint "
                         "written by hwnas supernet train")
    old = TrainConfig.from_dict(state["config"])
    for f in ("space", "data", "seed", "data_seed", "holdout", "test", "batch_size", "optimizer"):
        if getattr(old, f) != getattr(cfg, f):
            raise InputError(f"resume: {f} got {getattr(cfg, f)!r}, allowed: {getattr(old, f)!r} "
                             f"(what {out} was trained with)")
    net.load_state_dict(payload["state_dict"])
    optimizer.load_state_dict(payload["optimizer"])  # moves the state to the parameters' device
    return int(state["epoch"]), list(state.get("history", [])), float(state.get("seconds", 0.0))


@dataclass
class _Run:
    """What every epoch of one training run uses."""

    cfg: TrainConfig
    space: SearchSpace
    data: AnyData
    net: Supernet
    optimizer: torch.optim.Optimizer
    scaler: Any
    runtime: Runtime
    shard: Shard | None
    sampler: SubnetSampler

    def __post_init__(self) -> None:
        self.n_train = len(self.data.labels_of("train"))
        world = self.shard.world if self.shard else 1
        self.batch_size = max(1, self.cfg.batch_size // world)  # the global batch: the workers split it
        self.steps_per_epoch = math.ceil(math.ceil(self.n_train / world) / self.batch_size)
        self.teacher = self.space.largest()
        self.elastic = bool(getattr(self.data, "streaming", False))


def _shard_indices(shard: Shard, n_train: int, g: torch.Generator) -> list[int]:
    """This worker's images of the epoch: the epoch's permutation (the same on every worker, and the one a single
    process would use), dealt out by DistributedSampler: a global step's batch holds the images a one-process
    step would."""
    perm = torch.randperm(n_train, generator=g).tolist()
    indices = list(torch.utils.data.DistributedSampler(perm, num_replicas=shard.world, rank=shard.rank,
                                                        shuffle=False, drop_last=False))
    return [perm[i] for i in indices]


def _train_epoch(run: _Run, epoch: int, progress: bool) -> dict[str, Any]:
    """One epoch of sandwich-rule steps; its history record (without the running `seconds`)."""
    cfg, net, optimizer, scaler, runtime, shard = run.cfg, run.net, run.optimizer, run.scaler, run.runtime, run.shard
    rng, g = _epoch_streams(cfg, epoch)
    torch.manual_seed(int(rng.integers(2**62)))  # dropout draws from the global stream: seed it per epoch too
    if cfg.sort_every and epoch > 0 and epoch % cfg.sort_every == 0 and epoch >= cfg.largest_only_epochs:
        sort_channels(net, optimizer)
    net.train()
    only_largest = epoch < cfg.largest_only_epochs
    stats = {"loss": 0.0, "student_loss": 0.0, "correct": 0, "seen": 0}
    digest = hashlib.sha256() if shard is not None else None  # which subnets this worker trained
    indices = _shard_indices(shard, run.n_train, g) if shard is not None else None
    batches = run.data.batches("train", step_resolution(run.space, cfg, epoch, run.elastic), run.batch_size,
                               shuffle=True, generator=g, augment=cfg.augment, indices=indices,
                               pin_memory=runtime.cuda)
    bar = _bar(progress and (shard is None or shard.rank == 0), run.steps_per_epoch,
               f"epoch {epoch + 1}/{cfg.epochs}")
    for i, (x, y) in enumerate(batches):
        x, y = runtime.put(x, y)
        x = _nhwc(x)
        step = epoch * run.steps_per_epoch + i
        for group in optimizer.param_groups:
            group["lr"] = lr_at(cfg, step, run.steps_per_epoch)
        optimizer.zero_grad(set_to_none=True)
        # every worker draws the same subnets: `rng` is seeded by (seed, epoch) and advanced alike per step
        students = [] if only_largest else run.sampler.students(rng)
        if digest is not None:
            digest.update("".join(c.to_json() for c in students).encode())
        _sandwich_step(net, cfg, run.teacher, students, x, y, run.elastic, runtime, scaler, stats, (epoch, i))
        if shard is not None:
            shard.average_gradients(net)
        scaler.unscale_(optimizer)
        if cfg.grad_clip:
            nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{stats['loss'] / stats['seen']:.3f}",
                            acc=f"{100 * stats['correct'] / stats['seen']:.1f}")
    if bar is not None:
        bar.close()
    n = max(1, stats["seen"])
    record = {"epoch": epoch + 1, "loss": stats["loss"] / n, "student_loss": stats["student_loss"] / n,
              "train_acc": 100.0 * stats["correct"] / n, "lr": optimizer.param_groups[0]["lr"], "seconds": 0.0}
    if digest is not None:
        record.update(subnets_sha256=digest.hexdigest()[:16], rank=shard.rank, workers=shard.world)
    return record


def _sandwich_step(net: Supernet, cfg: TrainConfig, teacher: SubnetConfig, students: list[SubnetConfig],
                   x: torch.Tensor, y: torch.Tensor, elastic: bool, runtime: Runtime,
                   scaler: torch.amp.GradScaler, stats: dict[str, float], where: tuple[int, int]) -> None:
    """The largest subnet on the labels, then each student on the largest's soft labels plus the labels; gradients
    accumulate in `net` (the caller steps the optimizer). Streamed batches come at the step's resolution, which
    every subnet of the step uses; in-memory batches come at the largest and students resize them to theirs."""
    net.set_active(teacher)
    with runtime.autocast():
        logits = net(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
    _check_finite(loss, *where, cfg)
    scaler.scale(loss).backward()
    stats["loss"] += float(loss.detach()) * len(y)
    stats["correct"] += int((logits.argmax(1) == y).sum())
    stats["seen"] += len(y)
    if not students:
        return
    soft = F.softmax(logits.detach().float() / cfg.kd_temperature, dim=1)
    s_loss = 0.0
    for c in students:
        net.set_active(c)
        xs = x if elastic or c.resolution == x.shape[-1] else resize(x, c.resolution)
        with runtime.autocast():
            out_s = net(xs).float()
            ls = cfg.kd_weight * _kd_loss(out_s, soft, cfg.kd_temperature)
            if cfg.kd_weight < 1:
                ls = ls + (1 - cfg.kd_weight) * F.cross_entropy(out_s, y, label_smoothing=cfg.label_smoothing)
        _check_finite(ls, *where, cfg)
        scaler.scale(ls).backward()
        s_loss += float(ls.detach())
    stats["student_loss"] += s_loss / len(students) * len(y)


def _check_finite(loss: torch.Tensor, epoch: int, step: int, cfg: TrainConfig) -> None:
    """Stop at the first non-finite loss: training on would only save a checkpoint of NaNs (the last one written,
    from the end of the previous epoch, stays as it was)."""
    if not bool(torch.isfinite(loss.detach())):
        raise HwnasError(f"training diverged: the loss is {float(loss.detach())} at epoch {epoch + 1}, step {step + 1} "
                         f"(lr {cfg.lr:g}); lower `lr` (or `kd_weight`) and train again")


def _save(out: Path, net: Supernet, cfg: TrainConfig, optimizer: torch.optim.Optimizer, epoch: int,
          history: list[dict[str, Any]], seconds: float, data: AnyData | None = None,
          runtime: Runtime = CPU) -> None:
    if not all(bool(torch.isfinite(p).all()) for p in net.parameters()):
        raise HwnasError(f"training diverged: non-finite weights at the end of epoch {epoch}; not saving {out} "
                         f"(lr {cfg.lr:g}); lower `lr` and train again")
    meta = {"data": cfg.data, "data_seed": cfg.data_seed, "holdout": cfg.holdout, "test": cfg.test, "epochs": epoch,
            "train_config": cfg.to_dict(), "train_seconds": round(seconds, 2), "trained_on": runtime.describe()}
    if data is not None and getattr(data, "normalization", None):
        meta["normalization"] = data.normalization
    extra = {"optimizer": tensors_to_cpu(optimizer.state_dict()),
             "train_state": {"epoch": epoch, "config": cfg.to_dict(), "history": history, "seconds": seconds}}
    save_supernet(out, net, meta, extra)


def _bar(progress: bool, total: int, desc: str):  # type: ignore[no-untyped-def]
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)


def load_for_eval(path: str | os.PathLike[str], data_name: str | None = None, space: str | None = None,
                  data_seed: int | None = None, runtime: Runtime = CPU,
                  data_workers: int = 0) -> tuple[Supernet, AnyData, dict[str, Any]]:
    """(supernet on the runtime's device, data it was trained on or `data_name`, meta) ready for `evaluate`.
    A streamed folder is normalised as the checkpoint states (an imported OFA supernet: ImageNet's)."""
    net, meta = load_supernet(path, space=space)
    name = data_name or meta.get("data")
    if not name:
        raise InputError(f"data: {path} does not record its data set, allowed: give `data` NAME")
    seed = meta.get("data_seed", 0) if data_seed is None else data_seed
    # checkpoints from before --holdout / --test were trained on the defaults
    holdout, test = (float(meta.get(k, getattr(TrainConfig, k))) for k in ("holdout", "test"))
    data = load_data(name, seed=int(seed), in_channels=net.spec.in_channels, holdout=holdout, test=test,
                     image_size=max(net.spec.resolutions), workers=data_workers,
                     normalization=meta.get("normalization") if name.startswith("folder:") else None)
    check_compatible(net, data)
    return net.to(runtime.device), data, meta


__all__ = ["AnyData", "Shard", "TrainConfig", "TrainResult", "accuracy", "calibration_batches", "correct_mask", "evaluate",
           "evaluate_detailed", "evaluate_references", "half_accuracies",
           "load_for_eval", "load_training_data", "prepare_subnet", "reference_configs", "sort_channels",
           "step_resolution", "train_supernet"]
