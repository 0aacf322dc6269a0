"""The work that must run on the measured device, with JSON in and JSON out so the same functions run in this
process or as Ray tasks on the node that carries the device. Heavy imports stay inside the functions."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from latency_tables.backends import get_backend
from search_spaces.registry import one_line
from latency_tables.protocol import Protocol
from search_spaces import config_from_dict, get_space
from search_spaces.block_spec import parse_block_key
from search_spaces.errors import HwnasError


_REFERENCE_FILES: dict[str, tuple[bytes, tuple[int, ...]]] = {}


def reference_file(tmp: str | Path, batch: int, reference: dict[str, Any] | None) -> tuple[Path, tuple[int, ...]]:
    """The table's reference model as ONNX in `tmp`, exported once per process (a whole subnet takes seconds,
    and every chunk of blocks, every validated subnet and every export is timed next to it)."""
    import json

    from latency_tables.models import export_reference_model

    key = json.dumps([reference, batch], sort_keys=True)
    if key not in _REFERENCE_FILES:
        d = Path(tmp) / "reference"
        d.mkdir(exist_ok=True)
        path, shape = export_reference_model(d, batch, reference)
        _REFERENCE_FILES[key] = (path.read_bytes(), tuple(shape))
    data, shape = _REFERENCE_FILES[key]
    out = Path(tmp) / "reference.onnx"
    out.write_bytes(data)
    return out, shape


def device_fingerprint(backend: str, backend_args: dict[str, Any]) -> dict[str, Any]:
    return get_backend(backend, **backend_args).fingerprint()


def measure_blocks(space: str, keys: list[str], backend: str, backend_args: dict[str, Any],
                   protocol: dict[str, Any], reference: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """key -> {"measurement": {...}} or {"unsupported": reason}; the keys are measured interleaved, next to
    `reference` (the table's `reference_model`) when the protocol times one."""
    from latency_tables.models import export_block  # torch + onnx: only to measure

    be = get_backend(backend, **backend_args)
    sp = get_space(space)
    proto = Protocol.from_dict(protocol)
    out: dict[str, dict[str, Any]] = {}
    items: list[tuple[str, Any, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hwnas-lt-") as tmp:
        for key in keys:
            b = parse_block_key(key)
            ok, reason = be.supports(b.weight_bits, b.act_bits)
            if not ok:
                out[key] = {"unsupported": reason}
                continue
            path, shape = export_block(sp, b, tmp, batch=be.batch_size)
            items.append((key, path, shape))
        ref = reference_file(tmp, be.batch_size, reference) if proto.reference else None
        results = be.measure_many([(p, s) for _, p, s in items], proto, ref)
        for (key, _, _), r in zip(items, results):
            out[key] = {"unsupported": f"{be.name} cannot run it: {one_line(r)}"} if isinstance(r, Exception) \
                else {"measurement": r.to_dict()}
    return out


def measure_overhead(backend: str, backend_args: dict[str, Any], protocol: dict[str, Any],
                     reference: dict[str, Any] | None = None) -> dict[str, Any]:
    from latency_tables.models import export_overhead_model

    be = get_backend(backend, **backend_args)
    with tempfile.TemporaryDirectory(prefix="hwnas-lt-") as tmp:
        path, shape = export_overhead_model(f"{tmp}/overhead.onnx", be.batch_size)
        proto = Protocol.from_dict(protocol)
        ref = reference_file(tmp, be.batch_size, reference) if proto.reference else None
        r = be.measure_many([(path, shape)], proto, ref)[0]
        if isinstance(r, Exception):
            raise HwnasError(f"{be.name}: cannot run the overhead model: {one_line(r)}")
        return r.to_dict()


def measure_subnets(space: str, configs: list[dict[str, Any]], backend: str, backend_args: dict[str, Any],
                    protocol: dict[str, Any], reference: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Whole subnets end to end (exported, quantized per policy), measured interleaved."""
    from latency_tables.models import export_subnet

    be = get_backend(backend, **backend_args)
    sp = get_space(space)
    proto = Protocol.from_dict(protocol)
    with tempfile.TemporaryDirectory(prefix="hwnas-lt-") as tmp:
        items = [export_subnet(sp, config_from_dict(c), tmp, batch=be.batch_size) for c in configs]
        ref = reference_file(tmp, be.batch_size, reference) if proto.reference else None
        results = be.measure_many(items, proto, ref)
    out = []
    for c, r in zip(configs, results):
        if isinstance(r, Exception):
            raise HwnasError(f"{be.name}: cannot run subnet {config_from_dict(c).to_json()}: {one_line(r)}")
        out.append(r.to_dict())
    return out
