"""The measurement protocol: how a latency number is taken. Stored with every table, because on a shared or
throttling machine the protocol (statistic, repetitions, interleaving) matters as much as the table itself."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Annotated, Any, Literal, get_args

from annotated_types import Ge

from search_spaces.errors import bad_value
from search_spaces.settings import check_bounds, check_choice, setting

PROTOCOL_VERSION = 1
Statistic = Literal["median", "trimmed_mean", "min_of_round_medians"]
Clock = Literal["cpu", "wall"]
STATISTICS: tuple[str, ...] = get_args(Statistic)
CLOCKS: tuple[str, ...] = get_args(Clock)


@dataclass(frozen=True)
class Protocol:
    """warmup: untimed runs per model before timing. repeats: timed runs per model per round. rounds: the
    models measured together are visited round-robin `rounds` times (interleaving), so a burst of load on the
    machine hits all of them alike instead of one. statistic: how the `rounds * repeats` timings become one
    number (`median` by default; `min_of_round_medians` for very noisy machines). cpu_mem_arena: ONNX Runtime's
    CPU arena (off gave tighter runs on this project's machine). interleave: how many models are measured together.
    reference: also time the table's reference model (a mid-sized whole subnet of its space,
    `models.reference_config`) between rounds and store each model's latency *relative* to it (`ref_ratio`); a
    table then uses ratio x the reference's typical latency, which cancels slow changes of machine load between
    the time blocks were measured and the time a whole model is (on a shared machine these swing by +-50 %; ratios
    of alternated runs are stable: experiments/results/latency.md). On a dedicated device it changes ~nothing.
    clock: `cpu` times each run by the CPU time of the thread that runs it, where the backend computes on the
    calling thread (ort-cpu with 1 thread; other backends and thread counts use `wall`). On a machine with more
    runnable threads than cores, wall time inflates every run longer than a scheduler slice (a 3 ms model took
    8.8 ms wall, 3.3 ms CPU, while its 0.1-0.4 ms blocks were barely touched), so block sums could not match
    whole models; CPU time is what the model costs on a core of its own, which a user's quiet-machine timing
    sees. `wall`: the plain elapsed time (tables written before `clock` existed)."""

    warmup: Annotated[int, Ge(0)] = setting(10)
    repeats: Annotated[int, Ge(1)] = setting(20, "Timed runs per round.")
    rounds: Annotated[int, Ge(1)] = setting(5, "Interleaved rounds.")
    statistic: Statistic = setting("median")
    interleave: Annotated[int, Ge(1)] = setting(8)
    cpu_mem_arena: bool = setting(False)
    reference: bool = setting(True, "Time the reference model alongside (load normalization).")
    clock: Clock = setting("cpu", "cpu: time each run by its thread's CPU time where the backend computes on the "
                                  "calling thread (ort-cpu, 1 thread), so other work on the machine does not inflate "
                                  "it; wall: elapsed time.")
    version: int = setting(PROTOCOL_VERSION)

    def __post_init__(self) -> None:
        check_bounds(self, prefix="protocol.")
        check_choice(self, "clock", CLOCKS, prefix="protocol.")
        check_choice(self, "statistic", STATISTICS, prefix="protocol.")
        if not isinstance(self.reference, bool) or not isinstance(self.cpu_mem_arena, bool):
            raise bad_value("protocol.reference / cpu_mem_arena", (self.reference, self.cpu_mem_arena), "true or false")
        if self.version != PROTOCOL_VERSION:
            raise bad_value("protocol.version", self.version, str(PROTOCOL_VERSION))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Protocol:
        if not isinstance(d, Mapping):
            raise bad_value("protocol", d, "a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise bad_value(f"protocol key {unknown[0]!r}", d[unknown[0]], f"keys {', '.join(sorted(known))}")
        return cls(**{"clock": "wall", **dict(d)})  # without a clock: written before it existed, wall time

    @classmethod
    def quick(cls) -> Protocol:
        """A short protocol for tests and smoke runs (numbers are noisier)."""
        return cls(warmup=3, repeats=5, rounds=2, interleave=8)
