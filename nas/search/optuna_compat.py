"""Every private Optuna name hwnas uses, in one place (`optuna<6` is pinned; Optuna 5 has no public form of these).

Why each is needed:
- `tell_with_warning`: `Study.tell` minus the deep copy of the trial it returns (~8 % of a predicted trial).
- `CONSTRAINTS_KEY`: the trial system attribute Optuna's samplers and optuna-dashboard read constraints from; the
  engine writes it directly on its in-memory mirror (no `constraints_func` round trip per trial).
- `JournalOperation`, `JournalStorageReplayResult`: one journal append per batch of trials, and a replay that
  parses each distinct distribution once (`storage.py`, `journal.py`).
- `is_pareto_front`, `compute_hypervolume`: Optuna's own front and hypervolume (`pareto.py`).
- `storage_of`, `study_id_of`, `trial_id_of`, `forget_cached_trials`, `journal_worker_id`, `journal_backend`:
  the attributes behind a `Study`, trial and `JournalStorage`, for the engine's batched ask/tell.
Subclasses that override Optuna internals (`IncrementalNSGAIISampler`, `FastInMemoryStorage`, the journal replay)
rely on the attributes named in `PRIVATE_ATTRIBUTES`. `check()` fails naming the symbol when an Optuna upgrade
removes one (`tests/test_optuna_compat.py`)."""
from __future__ import annotations

import importlib
from typing import Any

import optuna
from optuna._hypervolume import compute_hypervolume
from optuna.storages.journal._storage import JournalOperation, JournalStorageReplayResult
from optuna.study._constrained_optimization import _CONSTRAINTS_KEY as CONSTRAINTS_KEY
from optuna.study._multi_objective import _is_pareto_front as is_pareto_front
from optuna.study._tell import _tell_with_warning as tell_with_warning

__all__ = ["CONSTRAINTS_KEY", "JournalOperation", "JournalStorageReplayResult", "check", "compute_hypervolume",
           "distribution_contains", "forget_cached_trials", "is_pareto_front", "journal_backend", "journal_worker_id",
           "storage_of", "study_id_of", "tell_with_warning", "trial_id_of"]

# module -> names imported from it above
PRIVATE_IMPORTS: dict[str, tuple[str, ...]] = {
    "optuna._hypervolume": ("compute_hypervolume",),
    "optuna.storages.journal._storage": ("JournalOperation", "JournalStorageReplayResult"),
    "optuna.study._constrained_optimization": ("_CONSTRAINTS_KEY",),
    "optuna.study._multi_objective": ("_is_pareto_front",),
    "optuna.study._tell": ("_tell_with_warning",),
}
# class (dotted) -> private attributes read or overridden on it or its instances
PRIVATE_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "optuna.study.Study": ("_storage", "_study_id", "_thread_local"),
    "optuna.trial.FrozenTrial": ("_trial_id",),
    "optuna.trial.Trial": ("_trial_id", "_suggest"),
    "optuna.storages.JournalStorage": ("_replay_result", "_backend"),
    "optuna.storages.InMemoryStorage": ("_trial_id_to_study_id_and_number", "_studies", "_lock", "_get_trial",
                                        "_set_trial"),
    "optuna.samplers.NSGAIISampler": ("_get_generation_key", "_get_parent_cache_key_prefix", "_population_size",
                                      "_child_generation_strategy"),
    "optuna.storages.journal._storage.JournalStorageReplayResult": (
        "_apply_create_trial", "_study_exists", "_trials", "_study_id_to_trial_ids", "_trial_id_to_study_id",
        "_is_issued_by_this_worker", "_worker_id_to_owned_trial_id"),
    "optuna.distributions.CategoricalDistribution": ("_contains",),
}


def storage_of(study: optuna.Study) -> Any:
    return study._storage


def study_id_of(study: optuna.Study) -> int:
    return study._study_id


def trial_id_of(trial: Any) -> int:
    return trial._trial_id


def forget_cached_trials(study: optuna.Study) -> None:
    """What `Study.ask` does before creating a trial: drop the per-thread cache of the study's trials."""
    study._thread_local.cached_all_trials = None


def journal_worker_id(storage: Any) -> str:
    return storage._replay_result.worker_id


def journal_backend(storage: Any) -> Any:
    return storage._backend


def distribution_contains(d: Any, internal: float) -> bool:
    """Whether a parameter's internal value lies in distribution `d` (what `Trial` checks when it records one)."""
    return bool(d._contains(internal))


def _instances(cls: type) -> list[Any]:
    """Real instances to look attributes up on (some exist only once constructed)."""
    import warnings

    from optuna.storages import InMemoryStorage, JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if cls is optuna.study.Study:
        return [optuna.create_study()]
    if cls is optuna.trial.Trial:
        return [optuna.create_study().ask()]
    if cls is optuna.trial.FrozenTrial:
        s = optuna.create_study()
        s.tell(s.ask(), 0.0)
        return [s.trials[0]]
    if cls is InMemoryStorage:
        return [InMemoryStorage()]
    if cls is JournalStorage:
        import tempfile

        d = tempfile.mkdtemp(prefix="hwnas-compat-")
        return [JournalStorage(JournalFileBackend(f"{d}/j.journal"))]
    if cls is optuna.samplers.NSGAIISampler:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return [optuna.samplers.NSGAIISampler(population_size=4)]
    if cls is JournalStorageReplayResult:
        return [JournalStorageReplayResult("w")]
    if cls is optuna.distributions.CategoricalDistribution:
        return [optuna.distributions.CategoricalDistribution([1, 2])]
    return []


def check() -> list[str]:
    """The private names this Optuna lacks, each as `module.name` / `Class.attribute` (empty: all present)."""
    missing = []
    for module, names in PRIVATE_IMPORTS.items():
        try:
            mod = importlib.import_module(module)
        except ImportError:
            missing += [f"{module}.{n}" for n in names]
            continue
        missing += [f"{module}.{n}" for n in names if not hasattr(mod, n)]
    for dotted, attrs in PRIVATE_ATTRIBUTES.items():
        module, _, name = dotted.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        objs = [cls, *_instances(cls)]
        missing += [f"{dotted}.{a}" for a in attrs if not any(hasattr(o, a) for o in objs)]
    return missing
