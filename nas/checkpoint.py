"""Supernet checkpoints: a state dict plus the space it was built for, saved atomically and loaded with
`torch.load(weights_only=True)` (no pickle of code objects)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from nas.device import cpu_state_dict
from search_spaces import HwnasError, InputError, get_space
from search_spaces.files import atomic_path
from search_spaces.supernet import Supernet

FORMAT = "hwnas-supernet"
VERSION = 1


def save_supernet(path: str | os.PathLike[str], net: Supernet, meta: dict[str, Any] | None = None,
                  extra: dict[str, Any] | None = None) -> None:
    """Write `net` (and e.g. optimizer state in `extra`) to `path`; `meta` must be JSON-like (data set, epochs).
    Tensors are stored on the CPU, so a checkpoint written on a GPU loads anywhere."""
    s = net.spec
    payload = {"format": FORMAT, "version": VERSION, "space": s.name, "num_classes": s.num_classes,
               "in_channels": s.in_channels, "meta": dict(meta or {}), "state_dict": cpu_state_dict(net)}
    payload.update(extra or {})
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_torch_file(path: str | os.PathLike[str], field: str, what: str) -> Any:
    """`torch.load` on the CPU, weights only (no pickle of code), with one clear line for a missing, truncated or
    foreign file; `what` names the kind of file expected ("hwnas checkpoint")."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{field}: got {str(path)!r}, allowed: an existing {what} file")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated or not a torch file
        raise InputError(f"{field}: {path} is not a readable {what} ({type(e).__name__}: "
                         f"{str(e).splitlines()[0][:200] if str(e) else ''})") from None


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    payload = load_torch_file(path, "supernet", "hwnas checkpoint")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise HwnasError(f"supernet: {path} is not an hwnas supernet checkpoint")
    if payload.get("version") != VERSION:
        raise HwnasError(f"supernet: {path} has checkpoint version {payload.get('version')}, this hwnas reads {VERSION}")
    return payload


def load_supernet(path: str | os.PathLike[str], space: str | None = None) -> tuple[Supernet, dict[str, Any]]:
    """(supernet in eval mode, meta). With `space`, a checkpoint of another space fails clearly."""
    payload = read_checkpoint(path)
    if space is not None and payload["space"] != space:
        raise InputError(f"supernet: {path} was trained for space {payload['space']!r}, not {space!r}")
    try:
        net = get_space(payload["space"], num_classes=payload["num_classes"],
                        in_channels=payload["in_channels"]).build_supernet()
        net.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError, TypeError, ValueError) as e:  # a state dict of another space or class count
        first = str(e).strip().splitlines()
        detail = next((ln.strip() for ln in first if "size mismatch" in ln or "Missing" in ln or "Unexpected" in ln),
                      first[0] if first else type(e).__name__)
        raise InputError(f"supernet: {path} does not match its header (space {payload.get('space')!r}, "
                         f"{payload.get('num_classes')!r} classes): {detail[:300]}") from None
    bad = [k for k, v in net.state_dict().items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise InputError(f"supernet: {path} has non-finite weights ({bad[0]}{' and others' if len(bad) > 1 else ''}); "
                         "it was saved from a diverged run: train it again")
    return net.eval(), dict(payload.get("meta", {}))
