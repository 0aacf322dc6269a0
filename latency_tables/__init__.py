"""What a device costs: backends that measure ONNX on a device, latency tables that store block latencies with
their provenance, vectorised lookup, calibration to whole models, and validation against end-to-end runs.

The names are imported lazily: listing backends or reading `TableConfig` (`hwnas latency build --help`, an
experiment file's schema) imports no torch or ONNX."""
from __future__ import annotations

from search_spaces.lazy import lazy_exports

# name -> module that defines it
_LAZY = {
    **{n: "latency_tables.backends" for n in ("BACKENDS", "Backend", "get_backend", "list_backends")},
    **{n: "latency_tables.build" for n in ("build_table", "calibrate_table", "table_keys")},
    "Calibration": "latency_tables.calibration",
    "Measurement": "latency_tables.measurement",
    "Protocol": "latency_tables.protocol",
    "quantize_onnx": "latency_tables.quantize",
    **{n: "latency_tables.table" for n in ("LatencyTable", "MissingBlockError")},
    "TableConfig": "latency_tables.table_config",
    **{n: "latency_tables.validate" for n in ("error_stats", "measure_subnet", "validate_table")},
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
