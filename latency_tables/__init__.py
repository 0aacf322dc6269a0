"""What a device costs: backends that measure ONNX on a device, latency tables that store block latencies with
their provenance, vectorised lookup, calibration to whole models, and validation against end-to-end runs."""
from latency_tables.backends import BACKENDS, Backend, get_backend, list_backends
from latency_tables.build import build_table, calibrate_table, table_keys
from latency_tables.calibration import Calibration
from latency_tables.measurement import Measurement
from latency_tables.protocol import Protocol
from latency_tables.quantize import quantize_onnx
from latency_tables.table import LatencyTable, MissingBlockError
from latency_tables.validate import error_stats, measure_subnet, validate_table

__all__ = [
    "BACKENDS", "Backend", "Calibration", "LatencyTable", "Measurement", "MissingBlockError", "Protocol",
    "build_table", "calibrate_table", "error_stats", "get_backend", "list_backends", "measure_subnet",
    "quantize_onnx", "table_keys", "validate_table",
]
