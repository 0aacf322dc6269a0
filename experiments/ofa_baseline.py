"""Once-for-All's own `EvolutionFinder` (the `ofa` PyPI package) driven with hwnas's predictor and latency table.

The search loop is the package's, unchanged. What it needs from its caller are two predictors and an arch
manager (`accuracy_predictor.arch_encoder`), here adapters:

- `HwnasArchEncoder`: OFA's `MobileNetArchEncoder` built with the space's own choice lists, so `random_sample_arch`,
  `mutate_resolution` and `mutate_arch` are the package's code. The joint space's extra per-block fields (keep
  ratio, bit pair) are sampled the same way and mutated per block with the same probability as (kernel, expand),
  independently of them; `crossover_sample` (the package's) crosses every list field element by element.
- `AccuracyAdapter.predict_acc`: hwnas's predicted evaluator on the batch; every call is recorded (the package
  keeps only its parents), and its count is the evaluation count.
- `EfficiencyAdapter.get_efficiency`: the latency table (inf where the device cannot run a block), free, as OFA
  treats its efficiency predictor.

`run_evolution_finder(..., n_evals)` sets `max_time_budget` so the package evaluates `n_evals` subnets: the first
population plus whole generations of `population_size` children.
"""
from __future__ import annotations

import random
from typing import Any

import numpy as np

from experiments.ofa_compat import enable_ofa
from search_spaces import SearchSpace, SubnetConfig


def _encoder_base() -> type:
    enable_ofa()
    from ofa.nas.accuracy_predictor.arch_encoder import MobileNetArchEncoder

    return MobileNetArchEncoder


def make_arch_encoder(space: SearchSpace, quantize: bool = True) -> Any:
    from nas.search.genes import Genes

    base = _encoder_base()
    s = space.spec
    pairs = list(space.bit_pairs) if quantize else [(32, 32)]
    genes = Genes(space, quantize)
    res_ix = {r: i for i, r in enumerate(space.resolutions)}
    depth_ix = {d: i for i, d in enumerate(s.depth_choices)}
    k_ix = {k: i for i, k in enumerate(s.kernel_choices)}
    e_ix = {e: i for i, e in enumerate(s.expand_choices)}
    kp_ix = {k: i for i, k in enumerate(space.keep_choices)}

    class HwnasArchEncoder(base):  # type: ignore[misc, valid-type]
        """OFA's MobileNetArchEncoder over hwnas's space, plus keep (`kp`) and bit pair (`wa`) per block."""

        def __init__(self) -> None:
            super().__init__(image_size_list=list(space.resolutions), ks_list=list(s.kernel_choices),
                             expand_list=list(s.expand_choices), depth_list=list(s.depth_choices),
                             n_stage=s.n_stages)
            self.keep_list = list(space.keep_choices)
            self.genes = genes
            self.pair_list = list(range(len(pairs)))

        def random_sample_arch(self) -> dict[str, Any]:
            arch = super().random_sample_arch()
            arch["kp"] = random.choices(self.keep_list, k=self.max_n_blocks)
            arch["wa"] = random.choices(self.pair_list, k=self.max_n_blocks)
            return arch

        def mutate_arch(self, arch_dict: dict[str, Any], mutate_prob: float) -> dict[str, Any]:
            super().mutate_arch(arch_dict, mutate_prob)
            for i in range(self.max_n_blocks):
                if random.random() < mutate_prob:
                    arch_dict["kp"][i] = random.choice(self.keep_list)
                    arch_dict["wa"][i] = random.choice(self.pair_list)
            return arch_dict

        def to_genes(self, archs: list[dict[str, Any]]) -> np.ndarray:
            """`nas.search.genes.Genes` rows of `archs` (no `SubnetConfig` built: the efficiency check runs on
            every re-drawn candidate)."""
            g = np.empty((len(archs), genes.n_genes), np.int64)
            for r, a in enumerate(archs):
                g[r, 0] = res_ix[a["image_size"]]
                g[r, 1:1 + genes.S] = [depth_ix[d] for d in a["d"]]
                blk = g[r, genes.block_base:].reshape(genes.P, 4)
                blk[:, 0] = [k_ix[k] for k in a["ks"]]
                blk[:, 1] = [e_ix[e] for e in a["e"]]
                blk[:, 2] = [kp_ix[k] for k in a["kp"]]
                blk[:, 3] = a["wa"]
            return g

        def to_config(self, arch: dict[str, Any]) -> SubnetConfig:
            md = max(self.depth_list)
            pos = [st * md + i for st, d in enumerate(arch["d"]) for i in range(d)]
            return SubnetConfig(space.name, int(arch["image_size"]), tuple(int(d) for d in arch["d"]),
                                tuple(int(arch["ks"][p]) for p in pos), tuple(int(arch["e"][p]) for p in pos),
                                tuple(float(arch["kp"][p]) for p in pos),
                                tuple(int(pairs[arch["wa"][p]][0]) for p in pos),
                                tuple(int(pairs[arch["wa"][p]][1]) for p in pos))

    return HwnasArchEncoder()


class AccuracyAdapter:
    """`predict_acc(list of arch dicts)` -> accuracies (percent), through hwnas's predicted evaluator."""

    def __init__(self, evaluator: Any, arch_encoder: Any) -> None:
        self.evaluator = evaluator
        self.arch_encoder = arch_encoder
        self.indices: list[np.ndarray] = []
        self.metrics: list[Any] = []

    def predict_acc(self, archs: list[dict[str, Any]]) -> np.ndarray:
        idx = self.arch_encoder.genes.to_indices(self.arch_encoder.to_genes(archs))
        m = self.evaluator.evaluate_indices(idx)
        self.indices.append(idx)
        self.metrics.append(m)
        return np.asarray(m.accuracy, dtype=np.float64)

    @property
    def n_evaluated(self) -> int:
        return sum(len(i) for i in self.indices)


class EfficiencyAdapter:
    """`get_efficiency(arch)` -> predicted latency in ms (inf where the device cannot run a block)."""

    def __init__(self, evaluator: Any, arch_encoder: Any) -> None:
        self.evaluator = evaluator
        self.arch_encoder = arch_encoder
        self.calls = 0

    def get_efficiency(self, arch: dict[str, Any]) -> float:
        self.calls += 1
        idx = self.arch_encoder.genes.to_indices(self.arch_encoder.to_genes([arch]))
        lat, _, sup = self.evaluator.evaluate_cost(idx)
        return float(lat[0]) if sup[0] else float("inf")


def run_evolution_finder(space: SearchSpace, evaluator: Any, n_evals: int, latency_budget: float, seed: int,
                         quantize: bool = True, population_size: int = 100) -> tuple[np.ndarray, Any, dict]:
    """The package's `EvolutionFinder.run_evolution_search(latency_budget)` with its default hyper-parameters and
    `n_evals` accuracy evaluations; every evaluated config (indices), their metrics, and the finder's own best."""
    enable_ofa()
    from ofa.nas.search_algorithm import EvolutionFinder

    from nas.search.evolution import concat_metrics

    random.seed(seed)
    np.random.seed(seed)
    enc = make_arch_encoder(space, quantize)
    acc = AccuracyAdapter(evaluator, enc)
    eff = EfficiencyAdapter(evaluator, enc)
    finder = EvolutionFinder(eff, acc, population_size=population_size)
    generations = max(0, n_evals // population_size - 1)
    _, best_info = finder.run_evolution_search(latency_budget, verbose=False, max_time_budget=generations)
    idx = np.concatenate(acc.indices)
    info = {"generations": generations, "evaluations": acc.n_evaluated, "efficiency_calls": eff.calls,
            "finder_best_accuracy": float(best_info[0]) if best_info else None}
    return idx, concat_metrics(acc.metrics), info
