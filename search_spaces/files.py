"""Atomic file writes: nothing half-written is ever left at the destination path.

A write goes to a temporary file beside the destination, is flushed to disk (fsync), given the permissions an
ordinary `open()` would have given it (the user's umask: temporary files are created 0o600, which would make
tables and models unreadable for a teammate on a shared cluster), renamed onto the destination, and the
directory is fsynced so the rename itself survives a power cut.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

def umask() -> int:
    """The process umask (`os.umask` can only be read by setting it; it is set back at once)."""
    m = os.umask(0o022)
    os.umask(m)
    return m


def shared_mode(path: str | os.PathLike[str]) -> None:
    """Give `path` the mode `open()` / `mkdir()` would have: 0o666 (files) or 0o777 (directories) minus the umask."""
    p = Path(path)
    p.chmod((0o777 if p.is_dir() else 0o666) & ~umask())


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush a file's (or a directory's, i.e. its entries') data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_tree(path: Path) -> None:
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file():
                fsync_path(p)
    elif path.exists():
        fsync_path(path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is synced, given the umask's mode and renamed onto
    `path`, else removed."""
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        publish(tmp_path, dest)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def publish(tmp: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """Rename a finished temporary file (or directory's files, synced) onto `dest`: synced data, umask's mode,
    atomic rename, synced directory entry."""
    tmp_path, dest_path = Path(tmp), Path(dest)
    _sync_tree(tmp_path)
    shared_mode(tmp_path)
    os.replace(tmp_path, dest_path)
    fsync_path(dest_path.parent)


def publish_pair(tmp_first: Path, dest_first: Path, tmp_second: Path, dest_second: Path) -> None:
    """Place two files that describe each other (a model and its card) so that a reader never sees a mismatched
    pair: the old second file goes first, then the new first, then the new second. A crash in between leaves the
    first without its second (which a reader can see is missing), never an old second beside a new first."""
    _sync_tree(tmp_first)
    _sync_tree(tmp_second)
    Path(dest_second).unlink(missing_ok=True)
    fsync_path(Path(dest_second).parent)
    publish(tmp_first, dest_first)
    publish(tmp_second, dest_second)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = 1) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=False) + "\n")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB chunks): identifies checkpoints, tables and models by content."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def inside(base: str | os.PathLike[str], name: str, field: str) -> Path:
    """`base / name`, refusing a name that leaves `base` (absolute, `..`, or a symlink pointing out): an artefact
    that names its own files must not be able to make hwnas open anything else."""
    from search_spaces.errors import InputError

    root = Path(base).resolve()
    if not isinstance(name, str) or not name or Path(name).is_absolute():
        raise InputError(f"{field}: got {name!r}, allowed: a file name inside {Path(base).name}/")
    p = (root / name).resolve()
    if p != root and root not in p.parents:
        raise InputError(f"{field}: got {name!r}, allowed: a file name inside {Path(base).name}/")
    return p
