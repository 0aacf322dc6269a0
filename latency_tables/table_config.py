"""`TableConfig`: every setting of one latency-table build, defined once -- name, type, default and help
(`search_spaces.settings`). `hwnas latency build` makes its options from these fields and `Protocol`'s, an
experiment file's `latency:` section takes its keys from here, and `build_table(TableConfig(...))` runs it."""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from annotated_types import Ge

from search_spaces import SearchSpace, SubnetConfig
from search_spaces.errors import bad_value, one_of
from search_spaces.settings import check_bounds, setting

from latency_tables.protocol import Protocol


def _backend_help() -> str:
    from latency_tables.backends import BACKENDS

    return f"{one_of(BACKENDS.names())} (see `hwnas latency backends`)."


@dataclass(frozen=True, kw_only=True)
class TableConfig:
    """One build. Resumable: pointed at an existing table of the same space, backend and device, it measures only
    what is missing."""

    space: str | SearchSpace = setting(help="Search space name (see `hwnas spaces`).", required=True)
    backend: str = setting(help=_backend_help, required=True)
    out: str | os.PathLike[str] = setting(help="Table file (JSON); resumed if it exists.", required=True)
    resolutions: Sequence[int] | None = setting(
        help="Input sizes to measure, e.g. 160,224 (default: all of the space's).")
    threads: Annotated[int, Ge(1)] = setting(1, "Intra-op threads.")
    batch_size: Annotated[int, Ge(1)] = setting(1)
    precision: str = setting("fp32", "Float format of the device's float layers: fp32, or the backend's 16-bit one "
                                     "(bf16 on openvino-cpu, fp16 on ort-cuda / ort-trt / tensorrt).")
    ray_address: str | None = setting(help="Measure on the Ray cluster's nodes carrying device:TAG (e.g. auto).")
    device_tag: str | None = setting(help="Name of the device (default: derived from the fingerprint).")
    calibrate: Annotated[int, Ge(0)] = setting(
        12, "Whole subnets (float, w8a8, w4a8 and mixed; small to large) measured end to end to choose and fit the "
            "calibration (0: none).")
    calibration_method: str = setting(
        "auto", "auto: the correction of the block sum with the lowest leave-one-out error on the calibration "
                "subnets, none unless one clearly helps; or force one (see calibration.py).")
    quantize: bool = setting(True, "Measure quantized bit-widths too (False: float blocks only).")
    protocol: Protocol = setting(Protocol(), "How each block is timed (`Protocol`).")
    keys: Sequence[str] | None = setting(help="Measure only these block keys (tests, partial tables).")
    calibration_configs: Sequence[SubnetConfig] | None = setting(
        help="Measure these whole subnets for the calibration instead of `calibrate` random ones.")
    progress: bool = setting(True, "Show a progress bar.")
    on_chunk: Callable[[int, int], None] | None = setting(
        help="Called with (blocks done, blocks expected) after each saved chunk.")

    def validate(self) -> None:
        """Unknown backend / precision / calibration method and out-of-bounds counts fail here, naming the field."""
        from latency_tables.backends import BACKENDS
        from latency_tables.calibration import AUTO, METHODS

        BACKENDS.get(self.backend).check_precision(self.precision)  # unknown names list the known ones
        if self.calibration_method != AUTO and self.calibration_method not in METHODS:
            raise bad_value("calibration_method", self.calibration_method, f"one of {AUTO}, {', '.join(METHODS)}")
        check_bounds(self)

    def backend_args(self) -> dict[str, Any]:
        """What the backend is constructed with on the device."""
        args: dict[str, Any] = {"threads": self.threads, "batch_size": self.batch_size}
        if self.precision != "fp32":  # fp32 tables keep the arguments (and cache keys) they had before precisions
            args["precision"] = self.precision
        return args
