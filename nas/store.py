"""`ResultsStore`: the Pareto fronts of every search, kept per (space, device tag + fingerprint, data set,
predictor) in any SQLAlchemy database -- an SQLite file by default (`./hwnas-results.db`).

Schema (SQLAlchemy Core, created on first write):

- `hwnas_fronts`: one row per stored front -- its key (space, device tag, device fingerprint, data set,
  predictor), the latency table's fingerprint, creation time and a free-form JSON `source` (study, command).
- `hwnas_entries`: one row per front entry; the metrics are real columns (accuracy %, latency ms, size bytes,
  MACs) and the config is JSON text. Indexed on (space, device_tag, <metric>) for each metric and on front_id.
- `hwnas_revision`: one counter bumped by every write, so readers can keep columns cached and know when
  they are stale with one primary-key read.

Nothing is pickled: configs and fingerprints are JSON text.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from nas.front import FrontEntry
from search_spaces import HwnasError, InputError, config_from_dict

DEFAULT_STORE = "hwnas-results.db"
# URL schemes (before any +driver) an hwnas store or study may use: SQLAlchemy's bundled dialects
URL_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "oracle", "mssql")
SCHEMA_VERSION = 2  # 2: hwnas_entries.accuracy_lower (a v1 store gains the column when opened for writing)

metadata = sa.MetaData()

fronts_table = sa.Table(
    "hwnas_fronts", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("space", sa.String(64), nullable=False),
    sa.Column("device_tag", sa.String(128), nullable=False),
    sa.Column("device_fingerprint", sa.String(16), nullable=False),  # short hash of the fingerprint JSON
    sa.Column("device_fingerprint_json", sa.Text, nullable=False),
    sa.Column("dataset", sa.String(128), nullable=False),
    sa.Column("predictor", sa.String(512), nullable=False),
    sa.Column("table_fingerprint", sa.Text, nullable=True),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("source", sa.Text, nullable=False),  # JSON object
    sa.Column("n_entries", sa.Integer, nullable=False),
    sa.Index("ix_fronts_key", "space", "device_tag", "dataset", "predictor"),
)

entries_table = sa.Table(
    "hwnas_entries", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("front_id", sa.Integer, sa.ForeignKey("hwnas_fronts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("space", sa.String(64), nullable=False),
    sa.Column("device_tag", sa.String(128), nullable=False),
    sa.Column("accuracy", sa.Float, nullable=False),
    sa.Column("accuracy_lower", sa.Float, nullable=True),  # FrontEntry.accuracy_lower (None: no bound known)
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("macs", sa.BigInteger, nullable=False),
    sa.Column("feasible", sa.Boolean, nullable=False),
    sa.Column("trial", sa.Integer, nullable=True),
    sa.Column("config", sa.Text, nullable=False),  # SubnetConfig JSON
    sa.Column("measured", sa.Text, nullable=False),  # JSON object
    sa.Index("ix_entries_front", "front_id"),
    sa.Index("ix_entries_accuracy", "space", "device_tag", "accuracy"),
    sa.Index("ix_entries_latency", "space", "device_tag", "latency_ms"),
    sa.Index("ix_entries_size", "space", "device_tag", "size_bytes"),
)

revision_table = sa.Table(
    "hwnas_revision", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("revision", sa.BigInteger, nullable=False),
    sa.Column("schema_version", sa.Integer, nullable=False),
)


def fingerprint_hash(fingerprint: Mapping[str, Any] | str) -> str:
    """A short stable id (12 hex digits) of a device fingerprint given as a dict or a string."""
    text = fingerprint if isinstance(fingerprint, str) else json.dumps(fingerprint, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _fingerprint_json(fingerprint: Mapping[str, Any] | str) -> str:
    if isinstance(fingerprint, str):
        return json.dumps(fingerprint)
    return json.dumps(dict(fingerprint), sort_keys=True, default=str)


def store_url(store: str | os.PathLike[str] | None) -> str:
    """An SQLAlchemy URL for `store`: a URL as is, a path as an SQLite file, None as ./hwnas-results.db."""
    if store is None:
        store = DEFAULT_STORE
    s = os.fspath(store)
    if "://" in s:
        return s
    return f"sqlite:///{Path(s).expanduser().resolve()}"


@dataclass(frozen=True)
class FrontInfo:
    """Where a stored front came from."""

    id: int
    space: str
    device_tag: str
    device_fingerprint: str  # short hash; the full fingerprint is in `device_fingerprint_full`
    dataset: str
    predictor: str
    table_fingerprint: str | None
    created_at: str
    n_entries: int
    source: dict[str, Any] = field(default_factory=dict)
    device_fingerprint_full: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"front_id": self.id, "space": self.space, "device_tag": self.device_tag,
                "device_fingerprint": self.device_fingerprint, "device_fingerprint_full": self.device_fingerprint_full,
                "dataset": self.dataset, "predictor": self.predictor, "table_fingerprint": self.table_fingerprint,
                "created_at": self.created_at, "n_entries": self.n_entries, "source": self.source}


@dataclass
class _Columns:
    """The metric columns of a group of fronts, for vectorised budget queries."""

    ids: np.ndarray
    front_ids: np.ndarray
    accuracy: np.ndarray
    latency_ms: np.ndarray
    size_bytes: np.ndarray
    accuracy_for_budget: np.ndarray  # FrontEntry.accuracy_for_budget: the lower bound, else the accuracy


def _check_entry(i: int, e: FrontEntry) -> None:
    if not isinstance(e, FrontEntry):
        raise InputError(f"entries[{i}]: got {type(e).__name__}, allowed: a nas.front.FrontEntry")
    for name in ("accuracy", "latency_ms"):
        v = getattr(e, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise InputError(f"entries[{i}].{name}: got {v!r}, allowed: a finite number")
    if e.latency_ms < 0:
        raise InputError(f"entries[{i}].latency_ms: got {e.latency_ms!r}, allowed: >= 0")
    lo = e.accuracy_lower
    if lo is not None and (isinstance(lo, bool) or not isinstance(lo, (int, float)) or not math.isfinite(lo)
                           or lo > e.accuracy):
        raise InputError(f"entries[{i}].accuracy_lower: got {lo!r}, allowed: None or a finite number <= accuracy")
    for name in ("size_bytes", "macs"):
        v = getattr(e, name)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise InputError(f"entries[{i}].{name}: got {v!r}, allowed: an integer >= 0")


class ResultsStore:
    """Pareto fronts in a database. `ResultsStore(url_or_path)`; `create=False` refuses a missing SQLite file
    (readers should not silently create an empty store)."""

    def __init__(self, store: str | os.PathLike[str] | None = None, create: bool = True) -> None:
        self.url = store_url(store)
        try:
            url = sa.engine.make_url(self.url)
        except sa.exc.ArgumentError:
            raise InputError(f"store: got {os.fspath(store)!r}, allowed: a file path or an SQLAlchemy URL") from None
        if url.get_backend_name() not in URL_SCHEMES:
            raise InputError(f"store: got scheme {url.get_backend_name()!r}, allowed: a file path or one of "
                             f"{', '.join(s + '://' for s in URL_SCHEMES)}")
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            path = Path(url.database)
            if not create and not path.is_file():
                raise InputError(f"store: got {os.fspath(store or DEFAULT_STORE)!r}, allowed: an existing results store "
                                 "(write one with `hwnas search --store URL`)")
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.engine = sa.create_engine(url)
            if url.get_backend_name() == "sqlite":
                sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            if create:
                metadata.create_all(self.engine)
                with self.engine.begin() as conn:
                    if conn.execute(sa.select(revision_table.c.id)).first() is None:
                        conn.execute(revision_table.insert().values(id=1, revision=0, schema_version=SCHEMA_VERSION))
            if sa.inspect(self.engine).has_table("hwnas_revision"):
                self._migrate()
            self._check_schema()
        except ImportError as e:  # the dialect's DBAPI driver is not installed
            raise InputError(f"store: {url.get_backend_name()} needs its database driver ({e}); install it, e.g. "
                             "pip install 'hwnas[postgres]' for PostgreSQL") from None
        except sa.exc.DatabaseError as e:
            if url.get_backend_name() == "sqlite" and "not a database" in str(e):  # the path names another file
                raise InputError(f"store: got {os.fspath(store or DEFAULT_STORE)!r}, allowed: an hwnas results store (SQLite); "
                                 "this file is not a database") from None
            raise HwnasError(f"store: cannot open {url.render_as_string(hide_password=True)} "
                             f"({type(e).__name__}: {str(e.args[0] if e.args else e).splitlines()[0][:300]})") from None
        except sa.exc.SQLAlchemyError as e:
            raise HwnasError(f"store: cannot open {url.render_as_string(hide_password=True)} "
                             f"({type(e).__name__}: {str(e.args[0] if e.args else e).splitlines()[0][:300]})") from None
        self._lock = threading.Lock()
        self._fronts_rev = -1
        self._fronts: list[FrontInfo] = []
        self._columns: dict[tuple[int, ...], tuple[int, _Columns]] = {}

    def _migrate(self) -> None:
        """v1 -> v2: add the nullable `accuracy_lower` column (old entries keep no bound); readers too, so a query
        on an old store answers instead of refusing it."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(revision_table.c.schema_version)).first()
            if row is not None and row[0] == 1:
                conn.execute(sa.text("ALTER TABLE hwnas_entries ADD COLUMN accuracy_lower FLOAT"))
                conn.execute(revision_table.update().values(schema_version=2))

    def _check_schema(self) -> None:
        insp = sa.inspect(self.engine)
        if not insp.has_table("hwnas_revision"):
            raise InputError(f"store: {self.url} is not an hwnas results store (no hwnas tables)")
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(revision_table.c.schema_version)).first()
        if row is not None and row[0] != SCHEMA_VERSION:
            raise HwnasError(f"store: {self.url} has schema version {row[0]}, this hwnas reads {SCHEMA_VERSION}")

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResultsStore({self.url!r})"

    # ---- writing ---------------------------------------------------------------------------------
    def add_front(self, entries: Sequence[FrontEntry], *, space: str, device_tag: str,
                  device_fingerprint: Mapping[str, Any] | str, dataset: str, predictor: str,
                  table_fingerprint: Mapping[str, Any] | str | None = None,
                  source: Mapping[str, Any] | None = None) -> int:
        """Store one front (all entries in one transaction) under its key; returns the new front id.

        `space` / `device_tag` / `dataset` are names (`mbv3`, `ort-cpu-x86`, `digits`); `device_fingerprint` is
        the latency table's / backend's fingerprint (dict or string); `predictor` names the accuracy predictor
        (path or name + version); `source` is anything JSON-like about the run (study name, command, seed)."""
        for name, v in (("space", space), ("device_tag", device_tag), ("dataset", dataset), ("predictor", predictor)):
            if not isinstance(v, str) or not v.strip():
                raise InputError(f"{name}: got {v!r}, allowed: a non-empty string")
        entries = list(entries)
        if not entries:
            raise InputError("entries: got an empty front, allowed: at least one FrontEntry")
        for i, e in enumerate(entries):
            _check_entry(i, e)
            if e.config.space != space:
                raise InputError(f"entries[{i}].config.space: got {e.config.space!r}, allowed: {space!r} (the front's space)")
        try:
            source_json = json.dumps(dict(source or {}), sort_keys=True, default=str)
        except (TypeError, ValueError) as e:
            raise InputError(f"source: not JSON-serialisable ({e})") from None
        table_fp = None if table_fingerprint is None else (
            table_fingerprint if isinstance(table_fingerprint, str) else _fingerprint_json(table_fingerprint))
        with self.engine.begin() as conn:
            front_id = conn.execute(fronts_table.insert().values(
                space=space, device_tag=device_tag, device_fingerprint=fingerprint_hash(device_fingerprint),
                device_fingerprint_json=_fingerprint_json(device_fingerprint), dataset=dataset, predictor=predictor,
                table_fingerprint=table_fp, created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                source=source_json, n_entries=len(entries),
            )).inserted_primary_key[0]
            rows = [{
                "front_id": front_id, "space": space, "device_tag": device_tag, "accuracy": float(e.accuracy),
                "accuracy_lower": None if e.accuracy_lower is None else float(e.accuracy_lower),
                "latency_ms": float(e.latency_ms), "size_bytes": int(e.size_bytes), "macs": int(e.macs),
                "feasible": bool(e.feasible), "trial": None if e.trial is None else int(e.trial),
                "config": e.config.to_json(), "measured": json.dumps(dict(e.measured), sort_keys=True),
            } for e in entries]
            for start in range(0, len(rows), 20000):
                conn.execute(entries_table.insert(), rows[start : start + 20000])
            self._bump(conn)
        return int(front_id)

    def remove_front(self, front_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(entries_table.delete().where(entries_table.c.front_id == front_id))
            n = conn.execute(fronts_table.delete().where(fronts_table.c.id == front_id)).rowcount
            if not n:
                raise InputError(f"front_id: got {front_id!r}, allowed: an id of a stored front")
            self._bump(conn)

    @staticmethod
    def _bump(conn: sa.Connection) -> None:
        conn.execute(revision_table.update().where(revision_table.c.id == 1)
                     .values(revision=revision_table.c.revision + 1))

    # ---- reading ---------------------------------------------------------------------------------
    def revision(self) -> int:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(revision_table.c.revision).where(revision_table.c.id == 1)).first()
        return 0 if row is None else int(row[0])

    def fronts(self, revision: int | None = None) -> list[FrontInfo]:
        """Every stored front (cached per revision)."""
        rev = self.revision() if revision is None else revision
        with self._lock:
            if rev != self._fronts_rev:
                with self.engine.connect() as conn:
                    rows = conn.execute(sa.select(fronts_table).order_by(fronts_table.c.id)).mappings().all()
                self._fronts = [FrontInfo(
                    id=r["id"], space=r["space"], device_tag=r["device_tag"], device_fingerprint=r["device_fingerprint"],
                    dataset=r["dataset"], predictor=r["predictor"], table_fingerprint=r["table_fingerprint"],
                    created_at=r["created_at"], n_entries=r["n_entries"], source=json.loads(r["source"]),
                    device_fingerprint_full=json.loads(r["device_fingerprint_json"])) for r in rows]
                self._fronts_rev = rev
            return list(self._fronts)

    def front(self, front_id: int) -> FrontInfo:
        for f in self.fronts():
            if f.id == front_id:
                return f
        raise InputError(f"front_id: got {front_id!r}, allowed: an id of a stored front")

    def entries(self, front_id: int) -> list[FrontEntry]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(entries_table).where(entries_table.c.front_id == front_id)
                                .order_by(entries_table.c.id)).mappings().all()
        return [_entry(r) for r in rows]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(entries_table)).scalar_one())

    def entry(self, entry_id: int) -> tuple[FrontEntry, int]:
        """(entry, front id) by entry id."""
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(entries_table).where(entries_table.c.id == entry_id)).mappings().first()
        if r is None:
            raise HwnasError(f"store: entry {entry_id} vanished (removed by another writer?)")
        return _entry(r), int(r["front_id"])

    def columns(self, front_ids: Iterable[int], revision: int) -> _Columns:
        """Metric columns of the entries of these fronts, cached until the store's revision changes."""
        key = tuple(sorted(front_ids))
        with self._lock:
            hit = self._columns.get(key)
            if hit is not None and hit[0] == revision:
                return hit[1]
        t = entries_table
        with self.engine.connect() as conn:
            lower = sa.func.coalesce(t.c.accuracy_lower, t.c.accuracy)
            result = conn.execute(sa.select(t.c.id, t.c.front_id, t.c.accuracy, t.c.latency_ms, t.c.size_bytes,
                                            lower).where(t.c.front_id.in_(key)))
            rows = result.cursor.fetchall()  # plain DBAPI tuples: ~50x faster into numpy than Row objects
            result.close()
        if rows:
            arr = np.array(rows, dtype=np.float64)
            cols = _Columns(arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2].copy(),
                            arr[:, 3].copy(), arr[:, 4].copy(), arr[:, 5].copy())
        else:
            z = np.zeros(0)
            cols = _Columns(z.astype(np.int64), z.astype(np.int64), z, z, z, z)
        _check_columns(cols)
        with self._lock:
            if len(self._columns) > 64:
                self._columns.clear()
            self._columns[key] = (revision, cols)
        return cols


def _check_columns(cols: _Columns) -> None:
    """Refuse stored metrics no search can have written (edited or corrupt rows): an answer built on a negative
    latency or a 250 % accuracy would be silently wrong."""
    bad = ~(np.isfinite(cols.accuracy) & (cols.accuracy >= 0) & (cols.accuracy <= 100)
            & np.isfinite(cols.accuracy_for_budget) & (cols.accuracy_for_budget <= cols.accuracy)
            & np.isfinite(cols.latency_ms) & (cols.latency_ms >= 0) & np.isfinite(cols.size_bytes) & (cols.size_bytes >= 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise HwnasError(f"store: entry {int(cols.ids[i])} (front {int(cols.front_ids[i])}) is corrupt: accuracy "
                         f"{float(cols.accuracy[i])!r}, latency_ms {float(cols.latency_ms[i])!r}, size_bytes "
                         f"{float(cols.size_bytes[i]):.0f}; "
                         f"allowed: accuracy in [0, 100], latency and size >= 0 ({int(bad.sum())} such entries; "
                         "remove the front and store it again)")


def _entry(r: Mapping[str, Any]) -> FrontEntry:
    acc = np.array([r["accuracy"]], dtype=np.float64)
    lower = acc if r.get("accuracy_lower") is None else np.array([r["accuracy_lower"]], dtype=np.float64)
    cols = _Columns(np.array([r["id"]]), np.array([r["front_id"]]), acc,
                    np.array([r["latency_ms"]], dtype=np.float64), np.array([r["size_bytes"]], dtype=np.float64), lower)
    _check_columns(cols)
    return FrontEntry(config=config_from_dict(json.loads(r["config"])), accuracy=float(r["accuracy"]),
                      latency_ms=float(r["latency_ms"]), size_bytes=int(r["size_bytes"]), macs=int(r["macs"]),
                      feasible=bool(r["feasible"]), trial=r["trial"], measured=json.loads(r["measured"]),
                      accuracy_lower=None if r["accuracy_lower"] is None else float(r["accuracy_lower"]))


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


__all__ = ["DEFAULT_STORE", "FrontInfo", "ResultsStore", "fingerprint_hash", "store_url"]
