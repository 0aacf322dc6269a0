"""`FastJournalStorage`: Optuna's `JournalStorage` with a replay that parses each distinct distribution once.

Why: reading a journal back (every `get_trials` of a study whose file another process appended to, the summary
of a run, every worker's per-batch sync) replays each new trial record, and Optuna rebuilds every parameter's
distribution from its JSON text -- ~75 per mbv3 trial, 2 ms a trial on this machine, more than the predicted
evaluator's whole trial (experiments/results/search.md). A study's records repeat the same few distribution
texts, so the replay here keeps one distribution object per text (distributions are never mutated; the engine's
own writes share them the same way). Everything else is Optuna's: the records, the file format, the locking.
`tests/test_search.py` checks that a replay gives the same trials as Optuna's own.
"""
from __future__ import annotations

import threading
import uuid
from datetime import datetime
from typing import Any

from optuna.distributions import BaseDistribution, json_to_distribution
from optuna.storages import JournalStorage
from optuna.storages.journal import BaseJournalBackend
from optuna.trial import FrozenTrial, TrialState

from nas.search.optuna_compat import JournalStorageReplayResult


class _Replay(JournalStorageReplayResult):
    def __init__(self, worker_id_prefix: str) -> None:
        super().__init__(worker_id_prefix)
        self._dist_cache: dict[str, BaseDistribution] = {}

    def _dist(self, text: str) -> BaseDistribution:
        d = self._dist_cache.get(text)
        if d is None:
            d = self._dist_cache[text] = json_to_distribution(text)
        return d

    def _apply_create_trial(self, log: dict[str, Any]) -> None:
        """`JournalStorageReplayResult._apply_create_trial` (Optuna 5.0), with the distribution cache."""
        study_id = log["study_id"]
        if not self._study_exists(study_id, log):
            return
        trial_id = len(self._trials)
        distributions = {k: self._dist(v) for k, v in log.get("distributions", {}).items()}
        params = {k: distributions[k].to_external_repr(p) for k, p in log.get("params", {}).items()}
        start = log["datetime_start"]
        complete = log.get("datetime_complete")
        self._trials[trial_id] = FrozenTrial(
            trial_id=trial_id, number=len(self._study_id_to_trial_ids[study_id]),
            state=TrialState(log.get("state", TrialState.RUNNING.value)), params=params,
            distributions=distributions, user_attrs=log.get("user_attrs", {}),
            system_attrs=log.get("system_attrs", {}), value=log.get("value", None),
            intermediate_values={int(k): v for k, v in log.get("intermediate_values", {}).items()},
            datetime_start=None if start is None else _local(start),
            datetime_complete=None if complete is None else _local(complete),
            values=log.get("values", None))
        self._study_id_to_trial_ids[study_id].append(trial_id)
        self._trial_id_to_study_id[trial_id] = study_id
        if self._is_issued_by_this_worker(log):
            self._last_created_trial_id_by_this_process = trial_id
            if self._trials[trial_id].state == TrialState.RUNNING:
                self._worker_id_to_owned_trial_id[self.worker_id] = trial_id


def _local(iso: str) -> datetime:
    return datetime.fromisoformat(iso).astimezone().replace(tzinfo=None)


class FastJournalStorage(JournalStorage):
    """`JournalStorage` (a file journal: no snapshots) whose replay is `_Replay`."""

    def __init__(self, log_storage: BaseJournalBackend) -> None:
        self._worker_id_prefix = str(uuid.uuid4()) + "-"
        self._backend = log_storage
        self._thread_lock = threading.Lock()
        self._replay_result = _Replay(self._worker_id_prefix)
        with self._thread_lock:
            self._sync_with_backend()

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        self._replay_result = _Replay(self._worker_id_prefix)
