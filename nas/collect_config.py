"""`CollectConfig`: every setting of one accuracy-label collection (`nas.accuracy_dataset.collect`), defined once
-- `hwnas predictor dataset` makes its options from these fields and an experiment file's `accuracy:` section
takes its keys from here. `device` and `amp` are the runtime fields every command that runs a network shares."""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from annotated_types import Ge, Gt, Le

from search_spaces.settings import Seed, check_bounds, check_choice, setting

from nas.choices import AMP_HELP, DEVICE_HELP, SPLITS, Amp, DeviceName, Split


@dataclass(frozen=True, kw_only=True)
class CollectConfig:
    """Evaluate `n` sampled subnets of `supernet` on `split` and append their records to `out` (resuming)."""

    supernet: str | os.PathLike[str] = setting(help="Supernet checkpoint (hwnas supernet train).", required=True)
    data_name: str | None = setting(help="Data set (default: the one the supernet was trained on).")
    n: Annotated[int, Ge(1)] = setting(help="Number of subnets in the file when done.", required=True)
    out: str | os.PathLike[str] = setting(help="JSON-lines file (appended, resumable).", required=True)
    seed: Seed = setting(0, "Seed of the sampled config sequence.")
    quantized_fraction: Annotated[float, Ge(0), Le(1)] = setting(
        0.5, "Fraction of subnets sampled with quantized blocks.")
    uniform_fraction: Annotated[float, Ge(0), Le(1)] = setting(
        0.0, "Fraction of the quantized ones with one bit-width pair in every block (the others: random per block).")
    split: Split = setting("holdout")
    calib_batches: Annotated[int, Ge(1)] = setting(
        8, "Training batches for BN / activation-range recalibration per subnet.")
    workers: Annotated[int, Ge(1)] = setting(1, "Evaluate as Ray tasks on this many CPUs (local Ray) when > 1.")
    ray_address: str | None = setting(help="Join this Ray cluster (e.g. auto) and evaluate there.")
    chunk_size: Annotated[int, Ge(1)] = setting(8, "Subnets per evaluation task.")
    threads: Annotated[int, Ge(1)] | None = setting(help="torch threads when evaluating here.")
    # sample only these (the ones a search will look at, e.g. its latency table's): no label is spent where the
    # search never goes
    resolutions: Sequence[int] | None = setting(
        help="Sample only these resolutions, e.g. 32 (those the search will look at; default: all).")
    # more subnets for the same time; the whole split stays for verifying chosen subnets
    max_images: Annotated[int, Ge(2)] | None = setting(
        help="Measure each subnet on the first N images of the split only (default: all).")
    progress: bool = setting(True, "Show a progress bar.")
    device: DeviceName = setting("auto", DEVICE_HELP)
    amp: Amp | None = setting(help=AMP_HELP)
    # Ray tasks that use GPUs request that many from Ray and evaluate on CUDA
    gpus_per_task: Annotated[float, Gt(0), Le(1)] | None = setting(
        help="GPUs each Ray evaluation task requests (a fraction shares one; default 1 on CUDA).")

    def validate(self) -> None:
        """Bad counts, fractions and names fail here, naming the field; a bad or unavailable device too."""
        check_bounds(self)
        check_choice(self, "split", SPLITS)
        from nas.device import resolve_amp, resolve_device

        resolve_amp(self.amp, resolve_device(self.device))  # before any task starts
