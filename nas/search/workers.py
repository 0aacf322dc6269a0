"""W Ray actors sharing one study through its storage, with trial-count accounting from the storage.

The driver works in rounds: remaining = target - COMPLETE trials in the storage, split over the live actors;
each actor runs exactly its quota (`SearchEngine.run`) and writes finished trials only. An actor that dies
(process killed, node lost) loses only its unflushed batch; the driver drops it, starts a replacement and the
next round recounts from the storage. So the study ends with exactly `target` complete trials, none
duplicated (each carries a unique `hwnas:uid`), whatever died on the way.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from search_spaces import HwnasError

from nas.ray_session import cluster_fit, ray_session, remote_once
from nas.search.engine import RunSpec, SearchEngine, count_complete, open_study

if TYPE_CHECKING:  # pragma: no cover
    import optuna


class SearchWorker:
    """The body of one Ray actor (wrapped by `ray.remote` once, by `remote_once`)."""

    def __init__(self, spec: dict[str, Any], worker: str) -> None:
        os.environ.setdefault("TQDM_DISABLE", "1")
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.worker = worker
        self.engine = SearchEngine(RunSpec.from_dict(spec), worker=worker)

    def pid(self) -> int:
        return os.getpid()

    def run(self, n: int) -> dict[str, Any]:
        stats = self.engine.run(n)
        d = asdict(stats)
        d["worker"] = self.worker
        return d


@dataclass
class Progress:
    """What the driver reports while workers run (and what a test uses to kill one)."""

    complete: int
    target: int
    round: int
    worker_pids: dict[str, int] = field(default_factory=dict)
    lost_workers: list[str] = field(default_factory=list)


@dataclass
class WorkerReport:
    rounds: int = 0
    lost_workers: list[str] = field(default_factory=list)
    stats: list[dict[str, Any]] = field(default_factory=list)
    ray_started: bool = False
    ray_address: str | None = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds: ray start, actors ready, rounds


def run_workers(spec: RunSpec, target: int, workers: int, ray_address: str | None = None,
                progress: Callable[[Progress], None] | None = None, poll_s: float = 0.25,
                max_rounds: int = 20, num_cpus_per_worker: float = 1.0,
                resources: dict[str, float] | None = None, study: optuna.Study | None = None) -> WorkerReport:
    import ray
    from ray.exceptions import RayActorError, RayTaskError

    report = WorkerReport()
    t0 = time.perf_counter()
    with ray_session(ray_address) as started:  # shut down at the end only if started here
        report.ray_started = started
        report.timings["ray_start_s"] = time.perf_counter() - t0
        try:
            report.ray_address = ray.get_runtime_context().gcs_address
        except Exception:  # pragma: no cover - informational only
            report.ray_address = None
        study = study if study is not None else open_study(spec)  # the caller's: a journal replays once
        actor_cls = remote_once(SearchWorker, max_restarts=0, max_task_retries=0).options(
            num_cpus=cluster_fit(workers, num_cpus_per_worker, resources), resources=resources or {})
        actors: dict[str, Any] = {}
        pids: dict[str, int] = {}
        spawned = 0
        spec_d = spec.to_dict()
        try:
            while True:
                done = count_complete(study)
                remaining = target - done
                if remaining <= 0:
                    break
                report.rounds += 1
                if report.rounds > max_rounds:
                    raise HwnasError(f"search: {remaining} trials still missing after {max_rounds} rounds "
                                     f"(workers lost: {', '.join(report.lost_workers) or 'none'})")
                while len(actors) < workers:
                    name = f"w{spawned}"
                    spawned += 1
                    actors[name] = actor_cls.remote(spec_d, name)
                for name, a in list(actors.items()):
                    if name not in pids:
                        try:
                            pids[name] = ray.get(a.pid.remote())
                        except RayActorError:
                            actors.pop(name)
                            report.lost_workers.append(name)
                names = list(actors)
                report.timings.setdefault("actors_ready_s", time.perf_counter() - t0)
                if not names:
                    continue
                quotas = [remaining // len(names) + (1 if i < remaining % len(names) else 0) for i in range(len(names))]
                futures = {actors[n].run.remote(q): n for n, q in zip(names, quotas) if q > 0}
                while futures:
                    ready, _ = ray.wait(list(futures), num_returns=1, timeout=poll_s)
                    for r in ready:
                        name = futures.pop(r)
                        try:
                            report.stats.append(ray.get(r))
                        except RayActorError:
                            actors.pop(name, None)
                            pids.pop(name, None)
                            report.lost_workers.append(name)
                        except RayTaskError as e:  # the search itself failed in the worker: not a lost worker
                            cause = e.cause if getattr(e, "cause", None) is not None else e
                            if isinstance(cause, HwnasError):
                                raise type(cause)(str(cause)) from None
                            raise HwnasError(f"worker {name}: {type(cause).__name__}: {cause}") from None
                    if progress is not None:
                        progress(Progress(count_complete(study), target, report.rounds, dict(pids),
                                          list(report.lost_workers)))
            report.timings["total_s"] = time.perf_counter() - t0
        finally:
            for a in actors.values():
                try:
                    ray.kill(a)
                except Exception:  # pragma: no cover - already gone
                    pass
    return report
