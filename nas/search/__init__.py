"""The joint search: Optuna multi-objective samplers over architecture x pruning x bit-width, budgets as
constraints, cheap predicted evaluations in batches, expensive measured ones in Ray workers that share one
study through its storage."""
from nas.budgets import Budgets
from nas.search.api import SearchResult, best_per_budget, run_search, space_normalizer
from nas.search.config import EVALUATORS, SearchConfig
from nas.search.encoding import ENCODINGS, BlockEncoding, Encoding, FieldEncoding, get_encoding
from nas.search.engine import RunSpec, SearchEngine, count_complete, open_study
from nas.search.evaluators import Evaluator, MeasuredEvaluator, Metrics, PredictedEvaluator, ProfileTable
from nas.search.evolution import EvolutionConfig, evolution_search
from nas.search.objectives import parse_objectives
from nas.search.pareto import Normalizer, hypervolume, pareto_mask
from nas.search.samplers import SAMPLERS, IncrementalNSGAIISampler, SamplerKind, SamplerOptions, make_sampler
from nas.search.storage import open_storage

__all__ = [
    "ENCODINGS", "EVALUATORS", "SAMPLERS", "BlockEncoding", "Budgets", "Encoding", "EvolutionConfig", "Evaluator",
    "FieldEncoding", "IncrementalNSGAIISampler", "MeasuredEvaluator", "Metrics", "Normalizer", "PredictedEvaluator",
    "ProfileTable", "RunSpec", "SamplerKind", "SamplerOptions", "SearchConfig", "SearchEngine", "SearchResult",
    "best_per_budget", "count_complete", "evolution_search", "get_encoding", "hypervolume", "make_sampler",
    "open_storage", "open_study", "pareto_mask", "parse_objectives", "run_search", "space_normalizer",
]
