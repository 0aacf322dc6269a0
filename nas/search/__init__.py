"""The joint search: Optuna multi-objective samplers over architecture x pruning x bit-width, budgets as
constraints, cheap predicted evaluations in batches, expensive measured ones in Ray workers that share one
study through its storage.

The names are imported lazily: `nas.search.config` (what `hwnas search --help` reads) must not pull Optuna in."""
from __future__ import annotations

from search_spaces.lazy import lazy_exports

# name -> module that defines it
_LAZY = {
    "Budgets": "nas.budgets",
    **{n: "nas.search.api" for n in ("SearchResult", "best_per_budget", "run_search", "space_normalizer")},
    **{n: "nas.search.config" for n in ("EVALUATORS", "SearchConfig")},
    **{n: "nas.search.encoding" for n in ("ENCODINGS", "BlockEncoding", "Encoding", "FieldEncoding", "get_encoding")},
    **{n: "nas.search.engine" for n in ("RunSpec", "SearchEngine", "count_complete", "open_study")},
    **{n: "nas.search.evaluators" for n in ("Evaluator", "MeasuredEvaluator", "Metrics", "PredictedEvaluator",
                                            "ProfileTable")},
    **{n: "nas.search.evolution" for n in ("EvolutionConfig", "evolution_search")},
    "parse_objectives": "nas.search.objectives",
    **{n: "nas.search.pareto" for n in ("Normalizer", "hypervolume", "pareto_mask")},
    "IncrementalNSGAIISampler": "nas.search.samplers",
    **{n: "nas.search.sampler_kinds" for n in ("SAMPLERS", "SamplerKind", "SamplerOptions", "make_sampler")},
    "open_storage": "nas.search.storage",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
