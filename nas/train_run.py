"""`run_training`: the one dispatch of a supernet training run on its `TrainRun` -- in this process, or
data-parallel on Ray Train workers -- shared by `hwnas supernet train`, the pipeline's supernet stage and scripts."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nas.train_config import TrainConfig, TrainRun


def run_training(cfg: TrainConfig, run: TrainRun, progress: bool = True,
                 on_epoch: Callable[[dict[str, Any]], None] | None = None) -> Any:
    """Train `cfg` as `run` says; returns the `TrainResult` (its per-epoch history; `on_epoch` sees each epoch's
    record as it ends in this process, or every record once the Ray Train workers are done)."""
    if run.distributed:  # each worker places itself (`use_gpu`); this process's device is not theirs
        from nas.distributed_train import train_distributed

        res = train_distributed(cfg, run.out, run.workers, use_gpu=run.use_gpu, ray_address=run.ray_address,
                                resume=run.resume, overwrite=run.overwrite, amp=run.amp,
                                data_workers=run.data_workers, init_from=run.init_from, threads=run.threads,
                                progress=progress)
        for rec in res.history if on_epoch is not None else ():
            on_epoch(rec)
        return res
    from nas.device import Runtime
    from nas.train import train_supernet

    runtime = Runtime.from_options(run.device, run.amp)  # a bad or missing device fails before any work
    return train_supernet(cfg, run.out, resume=run.resume, overwrite=run.overwrite, progress=progress,
                          threads=run.threads, on_epoch=on_epoch, runtime=runtime, data_workers=run.data_workers,
                          init_from=run.init_from)
