"""An out-of-tree sampler in one file: univariate TPE on the packed `block` encoding. A distribution registers it
with one entry point (`tests/test_search_contract.py` writes that metadata next to this file):

    [project.entry-points."hwnas.samplers"]
    example-tpe = "hwnas_example_sampler:EXAMPLE_TPE"
"""
import optuna

from nas.search.samplers import SamplerKind, SamplerOptions


def _build(o: SamplerOptions) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=o.seed, multivariate=False, n_startup_trials=8)


EXAMPLE_TPE = SamplerKind(_build, default_encoding="block", default_batch=8, light=False)
