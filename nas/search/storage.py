"""Where a study lives: a journal file by default, any Optuna RDB URL (SQLite, PostgreSQL, MySQL) on a cluster.

`open_storage(url)` accepts
- a plain path or ``journal:///abs/path`` / ``journal:rel/path`` -> `JournalStorage(JournalFileBackend)`;
  a batch of finished trials is appended with one write and one fsync (`write_finished_trials`);
- ``sqlite:///...``, ``postgresql://...``, ``mysql://...`` (any SQLAlchemy URL) -> `RDBStorage`.
"""
from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path
from typing import Any

from datetime import datetime, timezone

import optuna
from optuna.distributions import distribution_to_json
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import FrozenTrial

from search_spaces import HwnasError, InputError

from nas.search.journal import FastJournalStorage
from nas.search.optuna_compat import distribution_contains
from nas.store import URL_SCHEMES as RDB_SCHEMES  # noqa: E402  (one list of the schemes hwnas opens)


def is_rdb_url(url: str) -> bool:
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower() if "://" in url else ""
    return scheme in RDB_SCHEMES


def journal_path(url: str) -> Path | None:
    if is_rdb_url(url):
        return None
    if url.startswith("journal://"):
        return Path(url[len("journal://"):])
    if url.startswith("journal:"):
        return Path(url[len("journal:"):])
    if "://" in url:
        return None
    return Path(url)


def describe_url(url: str) -> str:
    """The URL without a password (for logs and the resolved run config)."""
    if "://" in url and "@" in url:
        head, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        user = cred.split(":", 1)[0]
        return f"{head}://{user}:***@{host}"
    return url


def open_storage(url: str, heartbeat_interval: int | None = None) -> optuna.storages.BaseStorage:
    jp = journal_path(url)
    if jp is not None:
        if jp.exists() and jp.is_dir():
            raise InputError(f"storage: got {url!r}, allowed: a journal file path (this is a directory)")
        jp.parent.mkdir(parents=True, exist_ok=True)
        return open_journal(jp)
    if not is_rdb_url(url):
        raise InputError(f"storage: got {describe_url(url)!r}, allowed: a journal file path, journal:///path, "
                         "or an RDB URL (sqlite:///, postgresql://, mysql://)")
    try:
        kw: dict[str, Any] = {"engine_kwargs": {"pool_pre_ping": True}} if not url.startswith("sqlite") else {}
        if url.startswith("sqlite"):
            kw["engine_kwargs"] = {"connect_args": {"timeout": 60}}
        if heartbeat_interval:
            kw.update(heartbeat_interval=heartbeat_interval, grace_period=heartbeat_interval * 4)
        return optuna.storages.RDBStorage(url, **kw)
    except ImportError as e:  # the dialect's DBAPI driver is not installed
        raise InputError(f"storage: {describe_url(url).split(':', 1)[0]} needs its database driver ({e}); install "
                         "it, e.g. pip install 'hwnas[postgres]' for PostgreSQL") from None
    except Exception as e:  # connection refused, ...
        raise HwnasError(f"storage: cannot open {describe_url(url)} ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''})") from None


class JournalRepairWarning(UserWarning):
    """A study journal had a torn or undecodable tail, which was cut off (and kept beside it) to open the study."""


def open_journal(path: Path) -> JournalStorage:
    """`JournalStorage` on a journal file, recovering from a torn write instead of losing the whole study.

    A writer killed mid-append leaves a last line without its newline; the next append would glue onto it, and
    Optuna then fails on that line with a `JSONDecodeError` and cannot read the study at all. So, holding the
    journal's own lock (no append is in progress then), a last line that is torn (no newline, or not JSON) is cut
    off before the study opens; and if Optuna still cannot decode the journal, it is cut back to its longest decodable prefix.
    What is cut is appended to `<journal>.torn` and named in a `JournalRepairWarning`."""
    lock = optuna.storages.journal.JournalFileOpenLock(str(path))
    _repair_journal(path, lock, full=False)
    try:
        return FastJournalStorage(JournalFileBackend(str(path), lock_obj=lock))
    except (json.JSONDecodeError, UnicodeDecodeError):
        _repair_journal(path, lock, full=True)
        return FastJournalStorage(JournalFileBackend(str(path), lock_obj=lock))


def _repair_journal(path: Path, lock: Any, full: bool) -> None:
    if not path.is_file() or path.stat().st_size == 0 or (not full and _tail_keep(path) is None):
        return  # the common case: a last line that decodes, checked without the lock
    lock.acquire()
    try:  # again under the lock: what looked torn may have been an append in progress
        raw = path.read_bytes()
        keep = _decodable_prefix(raw) if full else _tail_keep(path)
        if keep is None or keep >= len(raw):
            return
        dropped = raw[keep:]
        with open(f"{path}.torn", "ab") as t:
            t.write(dropped if dropped.endswith(b"\n") else dropped + b"\n")
            t.flush()
            os.fsync(t.fileno())
        with path.open("r+b") as f:
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
    finally:
        lock.release()
    n_lines = dropped.count(b"\n") + (not dropped.endswith(b"\n"))
    n_kept = raw.count(b"\n", 0, keep)
    what = "undecodable" if full else "an incomplete last write"
    warnings.warn(f"study journal {path}: dropped {len(dropped)} bytes ({n_lines} record{'s' if n_lines != 1 else ''},"
                  f" {what}) after {n_kept} valid records; kept them in {path}.torn", JournalRepairWarning,
                  stacklevel=3)


def _tail_keep(path: Path, window: int = 1 << 20) -> int | None:
    """Where the journal should end when its last line is torn (no newline, or not JSON), else None. Optuna
    skips such a line when reading, but the next append would glue onto it or leave it in the middle, where
    Optuna fails on it."""
    size = path.stat().st_size
    with path.open("rb") as f:
        start = max(0, size - window)
        f.seek(start)
        tail = f.read()
    if not tail.endswith(b"\n"):
        nl = tail.rfind(b"\n")
        return start + nl + 1 if nl >= 0 or start == 0 else None
    prev = tail.rfind(b"\n", 0, len(tail) - 1)
    if prev < 0 and start > 0:
        return None  # a last line longer than the window: leave it to Optuna
    try:
        json.loads(tail[prev + 1:])
        return None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return start + prev + 1


def _decodable_prefix(raw: bytes) -> int:
    """Bytes of `raw` up to the first line that is not a JSON object ending in a newline."""
    pos = 0
    while pos < len(raw):
        nl = raw.find(b"\n", pos)
        if nl < 0:
            break
        try:
            if not isinstance(json.loads(raw[pos:nl]), dict):
                break
        except (json.JSONDecodeError, UnicodeDecodeError):
            break
        pos = nl + 1
    return pos


class FastInMemoryStorage(optuna.storages.InMemoryStorage):
    """The engine's private mirror. Optuna re-checks a categorical distribution against the study's previous
    one element by element on every `set_trial_param` (~70 % of a `block`-encoded trial's cost with its
    135 choices); the engine passes the very same distribution object each time, which needs no check."""

    def set_trial_param(self, trial_id: int, param_name: str, param_value_internal: float,
                        distribution: optuna.distributions.BaseDistribution) -> None:
        study_id = self._trial_id_to_study_id_and_number[trial_id][0]
        known = self._studies[study_id].param_distribution
        if known.get(param_name) is distribution:
            del known[param_name]  # re-set by the base method below, unchecked
        super().set_trial_param(trial_id, param_name, param_value_internal, distribution)

    def set_trial_params(self, trial_id: int, params: dict[str, Any],
                         dists: dict[str, optuna.distributions.BaseDistribution]) -> None:
        """All of a trial's parameters in one update (values in external form, validated like `set_trial_param`)."""
        with self._lock:
            trial = self._get_trial(trial_id)
            self.check_trial_is_updatable(trial_id, trial.state)
            study_id = self._trial_id_to_study_id_and_number[trial_id][0]
            known = self._studies[study_id].param_distribution
            for name, d in dists.items():
                old = known.get(name)
                if old is not None and old is not d:
                    optuna.distributions.check_distribution_compatibility(old, d)
                if not distribution_contains(d, d.to_internal_repr(params[name])):
                    raise ValueError(f"{name}: {params[name]!r} is not in {d}")
                known[name] = d
            trial = copy.copy(trial)
            trial.params = {**trial.params, **params}
            trial.distributions = {**trial.distributions, **dists}
            self._set_trial(trial_id, trial)


def write_finished_trials(storage: optuna.storages.BaseStorage, study_id: int, trials: list[FrozenTrial]) -> None:
    """Append finished trials to the shared study: one journal append (one lock, one fsync) for the batch,
    with each distribution serialised once; on an RDB, `create_new_trial` per trial (one transaction each).

    The journal records are exactly those `JournalStorage.create_new_trial(template_trial=...)` writes (tests
    read them back with a fresh `JournalStorage`)."""
    if not isinstance(storage, JournalStorage):
        for t in trials:
            storage.create_new_trial(study_id, template_trial=t)
        return
    from nas.search.optuna_compat import JournalOperation, journal_backend, journal_worker_id

    worker_id = journal_worker_id(storage)
    dist_json: dict[int, str] = {}
    logs = []
    for t in trials:
        dists = {}
        for k, d in t.distributions.items():
            j = dist_json.get(id(d))
            if j is None:
                j = dist_json[id(d)] = distribution_to_json(d)
            dists[k] = j
        values = list(t.values) if t.values is not None else None
        logs.append({
            "op_code": JournalOperation.CREATE_TRIAL, "worker_id": worker_id, "study_id": study_id,
            "datetime_start": _iso(t.datetime_start), "state": int(t.state),
            "value": None if values is not None and len(values) > 1 else t.value,
            "values": values if values is not None and len(values) > 1 else None,
            "datetime_complete": _iso(t.datetime_complete), "distributions": dists,
            "params": {k: t.distributions[k].to_internal_repr(v) for k, v in t.params.items()},
            "user_attrs": t.user_attrs, "system_attrs": t.system_attrs, "intermediate_values": {},
        })
    journal_backend(storage).append_logs(logs)


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(timezone.utc).isoformat(timespec="microseconds")


def default_storage_url(out: str | os.PathLike[str]) -> str:
    return str(Path(out) / "study.journal")
