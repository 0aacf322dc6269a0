"""`--verify-top K`: re-score front entries with the measured evaluator, one Ray task per subnet."""
from __future__ import annotations

from typing import Any

from search_spaces import SubnetConfig, config_from_dict

def _measure(space: str, config: dict[str, Any], backend: str | None, supernet: str | None, data: str | None,
             predictor: str | None, table: str | None) -> dict[str, Any]:
    from search_spaces import get_space

    from nas.search.evaluators import MeasuredEvaluator
    from nas.search.loaders import load_predictor, load_table

    sp = get_space(space)
    ev = MeasuredEvaluator(sp, predictor=load_predictor(predictor) if predictor and supernet is None else None,
                           table=load_table(table) if table else None,  # with a backend: its protocol and load scale
                           backend=backend, supernet=supernet, data=data)
    return ev.evaluate([config_from_dict(config)]).row(0)


def measure_many(cfg: Any, configs: list[SubnetConfig]) -> list[dict[str, Any]]:
    import ray

    from nas.ray_session import ray_session, remote_once

    with ray_session(cfg.ray_address):
        task = remote_once(_measure, num_cpus=1, max_retries=1)
        refs = [task.remote(cfg.space, c.to_dict(), cfg.backend, cfg.supernet, cfg.data, cfg.predictor, cfg.table)
                for c in configs]
        return list(ray.get(refs))
