"""`hwnas data list`, `hwnas supernet train`, `hwnas supernet eval`."""
from __future__ import annotations

import json
import time
from typing import Any

import click

from nas.cli.fields import ConfigCommand, Flag, config_options
from nas.cli.options import SEED, FieldErrors, data_workers_option, device_options, echo_json, read_config


@click.group()
def data() -> None:
    """Data sets: registered names and their splits."""


@data.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per data set.")
def data_list(as_json: bool) -> None:
    """List the registered data sets (folder takes a path: folder:PATH)."""
    from nas.data import list_datasets

    for src in list_datasets():
        name = f"{src.name}:PATH" if src.name in ("folder", "folder-mem") else src.name
        if as_json:
            echo_json({"name": name, "description": src.description, "extra": src.optional})
        else:
            extra = f"  (needs hwnas[{src.optional}])" if src.optional else ""
            click.echo(f"{name:<16} {src.description}{extra}")


@data.command("show")
@click.argument("name")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Split seed.")
def data_show(name: str, seed: int) -> None:
    """Load a data set and print its classes, channels and split sizes as JSON."""
    from nas.data import load_data

    d = load_data(name, seed=seed)
    echo_json({"name": d.name, "num_classes": d.num_classes, "channels": d.channels, "image_size": d.size,
               "splits": d.split_sizes(), "seed": seed})


@click.group()
def supernet() -> None:
    """Train and evaluate weight-sharing supernets."""


def _train_config() -> type:
    from nas.train_config import TrainConfig

    return TrainConfig


def _train_run() -> type:
    from nas.train_config import TrainRun

    return TrainRun


# `TrainConfig` fields (what the checkpoint records), `TrainRun` fields (where it goes, what it runs on) and the
# command's own options, in `--help` order
TRAIN_OPTIONS: list[Any] = ["space", "data", "epochs"]
RUN_OPTIONS: list[Any] = [("out", Flag(type=click.Path(dir_okay=False))), "resume", "overwrite"]
TRAIN_OPTIONS_AFTER_RUN: list[Any] = [
    "seed", "data_seed", "holdout", "test", "batch_size", "lr", "optimizer", "n_random", "quant_prob", "kd_weight",
    "sort_every", "largest_only_epochs"]
RUN_OPTIONS_AFTER_TRAIN: list[Any] = [
    "threads",
    click.option("--eval/--no-eval", "do_eval", default=True, show_default=True,
                 help="Evaluate largest / smallest (float and 8-bit) on the test split at the end."),
    click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object."),
    click.option("--quiet", is_flag=True, help="No progress bar."),
    "device", "amp", "data_workers", ("init_from", Flag(type=click.Path(dir_okay=False))), "workers", "use_gpu",
    "ray_address",
]


@supernet.command("train", cls=ConfigCommand)
@config_options(_train_config, TRAIN_OPTIONS)
@config_options(_train_run, RUN_OPTIONS)
@config_options(_train_config, TRAIN_OPTIONS_AFTER_RUN)
@config_options(_train_run, RUN_OPTIONS_AFTER_TRAIN)
def supernet_train(do_eval: bool, as_json: bool, quiet: bool, **settings: Any) -> None:
    """Train a supernet: sandwich rule, in-place distillation, quantization-aware steps, channel sorting."""
    from nas.device import Runtime
    from nas.train import evaluate_references, load_for_eval
    from nas.train_config import TrainConfig, TrainRun
    from nas.train_run import run_training
    from search_spaces.settings import field_map

    run = TrainRun(**{k: settings.pop(k) for k in field_map(TrainRun)})
    cfg = TrainConfig(**settings)

    def line(rec: dict) -> None:
        if not as_json:
            click.echo(f"epoch {rec['epoch']:>3}  loss {rec['loss']:.3f}  student {rec['student_loss']:.3f}  "
                       f"train acc {rec['train_acc']:.1f} %  {rec['seconds']:.0f} s", err=True)

    t0 = time.perf_counter()
    res = run_training(cfg, run, progress=not quiet, on_epoch=line)
    summary = {"out": str(res.path), "epochs": res.epochs_done, "train_seconds": round(res.seconds, 1),
               "wall_seconds": round(time.perf_counter() - t0, 1),
               "final": res.history[-1] if res.history else None}
    if do_eval:
        runtime = Runtime.from_options(run.device, run.amp)
        net, d, _ = load_for_eval(run.out, runtime=runtime, data_workers=run.data_workers)
        summary["test_accuracy"] = {k: round(v, 2) for k, v in
                                    evaluate_references(net, d, "test", runtime=runtime).items()}
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"wrote {res.path}: {res.epochs_done} epochs in {res.seconds:.0f} s")
        for k, v in summary.get("test_accuracy", {}).items():
            click.echo(f"  {k:<16} {v:6.2f} % test")


@supernet.command("eval", cls=FieldErrors)
@click.option("--supernet", "path", type=click.Path(dir_okay=False), required=True, help="Checkpoint file.")
@click.option("--data", "data_name", default=None, help="Data set (default: the one it was trained on).")
@click.option("--split", type=click.Choice(["train", "holdout", "test"]), default="test", show_default=True)
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="Evaluate this config (JSON file).")
@click.option("--ofa", help="Evaluate this Once-for-All config (JSON).")
@click.option("--random", "n_random", type=click.IntRange(min=0), default=0, show_default=True,
              help="Also evaluate N random architectures (float and w8a8).")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None)
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@device_options
@data_workers_option
def supernet_eval(path: str, data_name: str | None, split: str, config_file: str | None, ofa: str | None,
                  n_random: int, seed: int, threads: int | None, as_json: bool, device: str, amp: str | None,
                  data_workers: int) -> None:
    """Top-1 accuracy (%) of subnets as extracted (BN + activation ranges recalibrated): one config, or the
    largest / smallest float, w8a8 and w4a8 (plus --random N)."""
    from nas.device import Runtime
    from nas.train import evaluate, evaluate_references, load_for_eval, set_threads

    set_threads(threads)
    runtime = Runtime.from_options(device, amp)
    net, d, meta = load_for_eval(path, data_name, runtime=runtime, data_workers=data_workers)
    t0 = time.perf_counter()
    if config_file is not None or ofa is not None:
        cfg = read_config(net.spec.name, config_file, ofa)
        acc = {"config": round(evaluate(net, cfg, d, split, seed=seed, runtime=runtime), 2)}
    else:
        acc = {k: round(v, 2) for k, v in evaluate_references(net, d, split, n_random, seed, runtime).items()}
    out = {"supernet": path, "data": d.name, "split": split, "accuracy": acc, **runtime.describe(),
           "seconds": round(time.perf_counter() - t0, 2), "epochs": meta.get("epochs")}
    if as_json:
        click.echo(json.dumps(out))
    else:
        for k, v in acc.items():
            click.echo(f"{k:<16} {v:6.2f} % {split}")


def _import_config() -> type:
    from nas.import_config import ImportConfig

    return ImportConfig


@supernet.command("import-ofa", cls=ConfigCommand)
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@config_options(_import_config, ["space", ("out", Flag(type=click.Path(dir_okay=False))), click.option(
    "--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")])
def supernet_import_ofa(as_json: bool, **settings: Any) -> None:
    """Convert a Once-for-All MobileNetV3 supernet checkpoint (its model zoo's file) into an hwnas supernet:
    float weights, keep ratio 1.0, ImageNet normalisation stated. Evaluate with `supernet eval --data folder:...`,
    fine-tune quantization-aware with `supernet train --init-from OUT`."""
    from nas.ofa_import import ImportConfig, import_ofa

    meta = import_ofa(ImportConfig(**settings))
    summary = {"out": settings["out"], "space": settings["space"], **meta}
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"wrote {settings['out']}: Once-for-All {meta['ofa_checkpoint']} as space {settings['space']} "
                   "(float, keep 1.0)")
