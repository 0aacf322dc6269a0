"""Verified ONNX export of one subnet, quantized per its policy, with a model card: `export_subnet(...)`.

1. extract the subnet from the supernet and recalibrate its BatchNorm statistics (and activation ranges) on
   fixed training batches;
2. export ONNX (opset 17, dynamic batch) and check it with `onnx.checker`; with `quantize`, export the float
   subnet (BN statistics of the quantized one) and quantize it with `latency_tables.quantize.quantize_onnx`:
   static QDQ per-channel, per-layer bits from `Subnet.quant_policy()`, 32-bit layers left float;
3. verify: onnxruntime vs the PyTorch subnet (the fake-quantized one for a quantized export) -- max abs / rel
   diff and top-1 agreement on the test split; test (and holdout) accuracy vs predicted; latency measured on the
   backend vs predicted from the latency table (or the stored front entry);
4. write `model.onnx` and `model.card.json` atomically (built in a temporary folder beside `out`, renamed).
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from search_spaces import FamilyConfig, HwnasError, InputError, SubnetConfig, get_space
from search_spaces.files import publish_pair, sha256_file

from nas.export_config import ExportConfig

CARD_FORMAT = "hwnas-model-card"
CARD_VERSION = 1


def card_path_for(out: str | os.PathLike[str]) -> Path:
    """`model.onnx` -> `model.card.json` (beside it)."""
    p = Path(out)
    stem = p.name[: -len(".onnx")] if p.name.endswith(".onnx") else p.name
    return p.with_name(f"{stem}.card.json")


@dataclass(frozen=True)
class ExportReport:
    """What the export produced and how well it matches what was promised (units: %, ms, bytes)."""

    onnx_path: str
    card_path: str
    config: SubnetConfig  # the config deployed (float version of the requested one without `quantize`)
    quantized: bool
    opset: int
    max_abs_diff: float  # onnxruntime vs PyTorch subnet, logits, the first `verify_n` test images
    max_rel_diff: float  # max_abs_diff / max |PyTorch logit|
    top1_agreement: float  # percent of those images where both pick the same class
    accuracy: float  # onnxruntime, the whole test split, percent
    torch_accuracy: float  # the PyTorch subnet, the first `verify_n` test images, percent
    holdout_accuracy: float  # onnxruntime, holdout split from image `holdout_from` on, percent
    predicted_accuracy: float | None
    latency_ms: float | None  # measured on the backend, plain median
    predicted_latency_ms: float | None
    size_bytes: int  # the ONNX file
    predicted_size_bytes: int  # weights at their bits (the search's size objective)
    card: dict[str, Any] = field(repr=False, default_factory=dict)
    # measured next to the table's reference: the latency at the machine speed the table was built at, and how
    # much the reference has slowed (+) or sped up since (a load-normalized table only; see `_measure_latency`)
    latency_at_table_speed_ms: float | None = None
    reference_drift: float | None = None

    def summary(self) -> dict[str, Any]:
        """The fields `hwnas export --json` prints."""
        d = asdict(self)
        d.pop("card")
        d["config"] = self.config.to_dict()
        return d


def _predicted_from_entry(entry: Any, deployed: SubnetConfig) -> dict[str, float]:
    """Predicted metrics of a stored front entry, if it is the subnet being deployed."""
    if entry is None or entry.config != deployed:
        return {}
    return {"accuracy": float(entry.accuracy), "latency_ms": float(entry.latency_ms)}


def _load_table(table: Any) -> Any:
    """A LatencyTable object as given, or loaded from its path."""
    if table is None or not isinstance(table, (str, os.PathLike)):
        return table
    from nas.search.loaders import load_table

    return load_table(table)


def _load_predictor(predictor: Any) -> Any:
    """An accuracy predictor object as given, or loaded from its directory."""
    if predictor is None or not isinstance(predictor, (str, os.PathLike)):
        return predictor
    from nas.search.loaders import load_predictor

    return load_predictor(predictor)


def _get_backend(name: str, threads: int = 1, precision: str = "fp32") -> Any:
    from latency_tables import get_backend

    return get_backend(name, threads=threads, precision=precision)


def _target_backend(backend: str | None, table_obj: Any) -> Any:
    """The backend to verify and measure on, under the table's conditions (threads, precision), so measured and
    predicted compare; a table measured by another runtime is refused, in one line."""
    if backend is None:
        return None
    table_fp = _fingerprint_of(table_obj) if table_obj is not None else None
    table_fp = table_fp if isinstance(table_fp, Mapping) else {}
    table_backend = getattr(table_obj, "backend", None)
    if table_backend is not None and table_backend != backend:
        raise InputError(f"backend: got {backend!r}, but the latency table was measured with {table_backend!r}; "
                         f"allowed: {table_backend!r} (or a table of {backend!r})")
    threads = table_fp.get("threads", 1)
    return _get_backend(backend, threads=int(threads) if isinstance(threads, int) and threads > 0 else 1,
                        precision=str(table_fp.get("precision", "fp32")))


def _fingerprint_of(obj: Any) -> Any:
    fp = getattr(obj, "fingerprint", None)
    if callable(fp):
        fp = fp()
    return fp


def _run_ort(path: Path, x: np.ndarray, batch: int = 256) -> np.ndarray:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i : i + batch]})[0] for i in range(0, len(x), batch)])


def _copy_bn_stats(dst: Any, src: Any) -> None:
    """Give `dst` (float subnet) the BatchNorm statistics of `src` (same architecture, fake-quantized)."""
    from torch import nn

    src_bn = {n: m for n, m in src.named_modules() if isinstance(m, nn.BatchNorm2d)}
    for n, m in dst.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(src_bn[n].running_mean)
            m.running_var.copy_(src_bn[n].running_var)


STREAMED_VERIFY_IMAGES = 2048  # evenly spread images per split measured when the data set streams from a folder


def _split_images(ds: Any, split: str, res: int) -> tuple[Any, Any]:
    """A split's images at `res`: all of an in-memory set; an even spread of a streamed one (a streamed split may
    be ImageNet's 50,000 val or 256,000 holdout images: decoding them all into memory is what streaming avoids)."""
    import torch

    if not getattr(ds, "streaming", False):
        return ds.at(split, res)
    n = len(ds.labels_of(split))
    take = np.unique(np.linspace(0, n - 1, min(n, STREAMED_VERIFY_IMAGES)).astype(np.int64))
    x, y = zip(*ds.batches(split, res, 256, indices=take))
    return torch.cat(x), torch.cat(y)


def export_subnet(settings: ExportConfig) -> ExportReport:
    """Export `settings.config` from its supernet checkpoint to `settings.out` (+ `<stem>.card.json`) and verify it
    (`ExportConfig`): extract and recalibrate, export ONNX and quantize, verify against PyTorch, the predictor and
    the latency table, write the card."""
    import torch

    from nas.train import load_for_eval

    s = settings
    t_start = time.perf_counter()
    out = _check_arguments(s.config, s.out, s.calib_batches, s.calib_batch_size, s.verify_n, s.holdout_from)
    table_obj = _load_table(s.table)
    backend = None if s.backend == "none" else s.backend  # the CLI's word for none
    b = _target_backend(backend, table_obj)  # bad backend / table pairs fail before any work
    torch.manual_seed(s.seed)
    net, ds, meta = load_for_eval(s.supernet, data_name=s.data)
    if s.config.space != net.spec.name:
        raise InputError(f"config.space: got {s.config.space!r}, allowed: {net.spec.name!r} (the supernet's space)")
    deployed = s.config if s.quantize else s.config.float_version()
    space = get_space(net.spec.name, num_classes=net.spec.num_classes, in_channels=net.spec.in_channels)
    input_shape = space.input_shape(deployed, batch=1)
    sub = _extract(net, space, ds, deployed, s.quantize, s.calib_batches, s.calib_batch_size, s.seed, s.device)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        onnx_model = _export_and_quantize(sub, input_shape, tmpdir)
        # the file a user of the target runtime deploys (e.g. fp16 for ort-cuda at fp16)
        if b is not None and b.deployable(onnx_model.path) != str(onnx_model.path):
            onnx_model = replace(onnx_model, path=Path(b.deployable(onnx_model.path)))
        checked = _verify(sub.ref, ds, deployed.resolution, onnx_model.path, b, s.verify_n, s.holdout_from)
        predicted = _predict(s.entry, deployed, s.predictor, table_obj, space)
        measured = _measure_latency(b, onnx_model.path, input_shape, s.protocol, table_obj)
        src = _Sources(s.supernet, meta, ds, s.table, table_obj, s.predictor, backend, b, s.query_provenance,
                       s.calib_batches, s.calib_batch_size, s.seed)
        card = _card(src, s.config, deployed, out, input_shape, net.spec.num_classes, sub, onnx_model, checked,
                     predicted, measured)
        card["export_seconds"] = round(time.perf_counter() - t_start, 2)
        card_tmp = tmpdir / "card.json"
        card_tmp.write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
        # the old card goes before the new model arrives: a reader never sees a new model beside an old card
        card_path = card_path_for(out)
        publish_pair(onnx_model.path, out, card_tmp, card_path)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return ExportReport(
        onnx_path=str(out), card_path=str(card_path), config=deployed, quantized=sub.is_quant,
        opset=onnx_model.opset,
        max_abs_diff=checked.max_abs, max_rel_diff=checked.max_rel, top1_agreement=checked.agree,
        accuracy=checked.acc, torch_accuracy=checked.torch_acc, holdout_accuracy=checked.holdout_acc,
        predicted_accuracy=predicted.accuracy, latency_ms=measured.latency_ms,
        predicted_latency_ms=predicted.latency_ms, size_bytes=card["measured"]["size_bytes"],
        predicted_size_bytes=predicted.profile.size_bytes, card=card,
        latency_at_table_speed_ms=measured.at_table_speed_ms,
        reference_drift=None if measured.reference is None else measured.reference["drift"])


def _check_arguments(config: Any, out: str | os.PathLike[str], calib_batches: Any, calib_batch_size: Any,
                     verify_n: Any, holdout_from: Any) -> Path:
    if not isinstance(config, FamilyConfig):
        raise InputError(f"config: got {type(config).__name__}, allowed: a search-space config (SubnetConfig, ...)")
    out = Path(out)
    if out.is_dir():
        raise InputError(f"out: got {str(out)!r} (a directory), allowed: a file path such as model.onnx")
    for name, v in (("calib_batches", calib_batches), ("calib_batch_size", calib_batch_size),
                    ("verify_n", 1 if verify_n is None else verify_n)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise InputError(f"{name}: got {v!r}, allowed: an integer >= 1")
    if not isinstance(holdout_from, int) or isinstance(holdout_from, bool) or holdout_from < 0:
        raise InputError(f"holdout_from: got {holdout_from!r}, allowed: an integer >= 0")
    return out


@dataclass
class _Extracted:
    """Step 1: the PyTorch reference (the fake-quantized subnet the predictor predicts), the float subnet that is
    exported (the reference's BN statistics), its bit policy and the calibration batches."""

    ref: Any
    float_sub: Any
    policy: dict[str, Any]
    calib: list[Any]

    @property
    def is_quant(self) -> bool:
        return bool(self.policy)


def _extract(net: Any, space: Any, ds: Any, deployed: FamilyConfig, quantize: bool, calib_batches: int,
             calib_batch_size: int, seed: int, device: str) -> _Extracted:
    """1. extract + recalibrate on fixed training batches."""
    from nas.device import Runtime, resolve_device
    from nas.train import calibration_batches
    from search_spaces.supernet import recalibrate

    runtime = Runtime(resolve_device(device))
    calib = calibration_batches(ds, deployed.resolution, calib_batches, calib_batch_size, seed, runtime)
    ref = recalibrate(net.extract(deployed, fake_quant=True).to(runtime.device), calib).eval().cpu()
    calib = [b.cpu() for b in calib]
    policy = space.quantizable_layers(ref) if quantize else {}
    float_sub = ref
    if policy:
        float_sub = net.extract(deployed, fake_quant=False).eval()
        _copy_bn_stats(float_sub, ref)
    return _Extracted(ref, float_sub, policy, calib)


@dataclass(frozen=True)
class _Onnx:
    path: Path
    proto: Any  # the checked model's graph (without external data)
    opset: int
    dynamic: bool


def _export_and_quantize(sub: _Extracted, input_shape: tuple[int, ...], tmpdir: Path) -> _Onnx:
    """2. export the float subnet, quantize it per its policy, check it with `onnx.checker`."""
    import onnx

    from search_spaces.onnx_export import export_onnx

    float_path = tmpdir / "float.onnx"
    export_onnx(sub.float_sub, input_shape, float_path, dynamic_batch=True)
    model_path = float_path
    if sub.is_quant:
        from latency_tables.quantize import quantize_onnx

        model_path = tmpdir / "model.onnx"
        quantize_onnx(float_path, model_path, sub.policy, [b.numpy() for b in sub.calib])
    try:
        onnx.checker.check_model(str(model_path), full_check=True)
    except onnx.checker.ValidationError as e:
        raise HwnasError(f"export: onnx.checker rejects the exported model: {str(e).splitlines()[0]}") from None
    m = onnx.load(str(model_path), load_external_data=False)
    opset = next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    batch_dim = m.graph.input[0].type.tensor_type.shape.dim[0]
    return _Onnx(model_path, m, opset, bool(batch_dim.dim_param) and not batch_dim.HasField("dim_value"))


@dataclass(frozen=True)
class _Verified:
    max_abs: float
    max_rel: float
    agree: float  # top-1 agreement, percent
    acc: float  # deployed model, whole test split
    torch_acc: float  # PyTorch reference, the first `n_ref` test images
    holdout_acc: float
    holdout_images: list[int]  # [first, end)
    n_ref: int
    n_test: int
    runtime: str


def _verify(ref: Any, ds: Any, res: int, model_path: Path, b: Any, verify_n: int | None,
            holdout_from: int) -> _Verified:
    """3. the deployed model against PyTorch on the test split, on the target runtime where it can run here."""
    import torch

    x_test, y_test = _split_images(ds, "test", res)
    n_ref = len(x_test) if verify_n is None else min(verify_n, len(x_test))
    with torch.no_grad():
        ref_logits = torch.cat([ref(x_test[i : min(i + 256, n_ref)]) for i in range(0, n_ref, 256)]).numpy()

    def run_deployed(x: np.ndarray) -> tuple[np.ndarray, str]:
        """Logits from the target runtime where its backend can compute them here, else ONNX Runtime CPU."""
        out = b.infer(model_path, x) if b is not None else None
        return (out, b.name) if out is not None else (_run_ort(model_path, x), "ort-cpu")

    ort_logits, verified_on = run_deployed(x_test.numpy().astype(np.float32))
    diff = np.abs(ort_logits[:n_ref] - ref_logits)
    max_abs = float(diff.max())
    max_rel = max_abs / max(float(np.abs(ref_logits).max()), 1e-12)
    agree = 100.0 * float((ort_logits[:n_ref].argmax(1) == ref_logits.argmax(1)).mean())
    labels = y_test.numpy()
    acc = 100.0 * float((ort_logits.argmax(1) == labels).mean())
    torch_acc = 100.0 * float((ref_logits.argmax(1) == labels[:n_ref]).mean())
    # the same model on the split the predictor learnt from: a gap between holdout and test is the splits',
    # a gap between prediction and holdout the predictor's
    x_hold, y_hold = _split_images(ds, "holdout", res)
    if holdout_from >= len(y_hold):
        raise InputError(f"holdout_from: got {holdout_from}, allowed: fewer than the {len(y_hold)} holdout "
                         "images")
    x_hold, y_hold = x_hold[holdout_from:], y_hold[holdout_from:]
    holdout_acc = 100.0 * float((run_deployed(x_hold.numpy().astype(np.float32))[0].argmax(1)
                                 == y_hold.numpy()).mean())
    return _Verified(max_abs, max_rel, agree, acc, torch_acc, holdout_acc,
                     [holdout_from, holdout_from + int(len(y_hold))], n_ref, int(len(labels)), verified_on)


@dataclass(frozen=True)
class _Predicted:
    accuracy: float | None
    accuracy_source: str | None
    latency_ms: float | None
    latency_source: str | None
    profile: Any
    predictor: Any  # the loaded predictor (None: none given)


def _predict(entry: Any, deployed: SubnetConfig, predictor: Any, table_obj: Any, space: Any) -> _Predicted:
    """What was promised: the predictor's and the table's figures, else the stored front entry's."""
    from_entry = _predicted_from_entry(entry, deployed)
    pred_acc, acc_source = from_entry.get("accuracy"), ("front entry" if "accuracy" in from_entry else None)
    pred_obj = _load_predictor(predictor)
    if pred_obj is not None:
        pred_acc, acc_source = float(np.asarray(pred_obj.predict([deployed])).ravel()[0]), "predictor"
    pred_lat, lat_source = from_entry.get("latency_ms"), ("front entry" if "latency_ms" in from_entry else None)
    if table_obj is not None:
        pred_lat, lat_source = float(np.asarray(table_obj.predict([deployed])).ravel()[0]), "latency table"
    return _Predicted(pred_acc, acc_source, pred_lat, lat_source, space.profile(deployed), pred_obj)


@dataclass(frozen=True)
class _Measured:
    latency_ms: float | None = None  # plain: the median on this machine as it is now
    measurement: dict[str, Any] | None = None
    fingerprint: dict[str, Any] | None = None
    protocol: Any = None
    # against the table's reference model, timed interleaved with the export (load-normalized tables only)
    at_table_speed_ms: float | None = None  # ref_ratio x the reference's ms during the build
    reference: dict[str, Any] | None = None  # {"ms_now", "ms_at_build", "drift"}


def _measure_latency(b: Any, model_path: Path, input_shape: tuple[int, ...], protocol: Any,
                     table_obj: Any = None) -> _Measured:
    """Latency of the deployed file on the backend (none without one), by the table's protocol unless one is
    given. Against a load-normalized table the file is also timed next to the table's reference model, as every
    block was: the ratio times the reference's latency during the build is the export's latency at the speed the
    table was measured at, which is what the prediction claims; the plain median includes whatever the machine's
    speed has done since (the reference's drift, also recorded)."""
    if b is None:
        return _Measured(protocol=protocol)
    from latency_tables.protocol import Protocol

    if protocol is None:
        protocol = Protocol.from_dict(table_obj.protocol) if table_obj is not None else Protocol()
    normalized = table_obj is not None and table_obj.normalized and protocol.reference
    with tempfile.TemporaryDirectory(prefix="hwnas-ref-") as tmp:
        from latency_tables.device_tasks import reference_file

        ref = reference_file(tmp, input_shape[0], table_obj.reference_model) if normalized else None
        mres = b.measure(model_path, input_shape, protocol, ref)
    d = mres.to_dict()  # what the card records, so its figures recompute from one another
    m = _Measured(float(mres.median_ms), d, b.fingerprint(), protocol)
    if not normalized or d.get("ref_ratio") is None:
        return m
    at_build = float(table_obj.reference_ms)
    return replace(m, at_table_speed_ms=d["ref_ratio"] * at_build,
                   reference={"ms_now": d["ref_ms"], "ms_at_build": at_build, "drift": d["ref_ms"] / at_build - 1})


@dataclass(frozen=True)
class _Sources:
    """What the export was given and loaded, as the card records it."""

    supernet: str | os.PathLike[str]
    meta: dict[str, Any]
    ds: Any
    table: Any
    table_obj: Any
    predictor: Any
    backend: str | None
    b: Any  # the backend object (None: not measured)
    query_provenance: Mapping[str, Any] | None
    calib_batches: int
    calib_batch_size: int
    seed: int


def _card(src: _Sources, config: SubnetConfig, deployed: SubnetConfig, out: Path, input_shape: tuple[int, ...],
          num_classes: int, sub: _Extracted, onnx_model: _Onnx, checked: _Verified, predicted: _Predicted,
          measured: _Measured) -> dict[str, Any]:
    """4. the model card: what the file is, how to run it, where it came from, what was promised and measured."""
    import onnx
    import torch

    m, model_path, policy, is_quant = onnx_model.proto, onnx_model.path, sub.policy, sub.is_quant
    ds, meta, table, table_obj, predictor, backend = src.ds, src.meta, src.table, src.table_obj, src.predictor, \
        src.backend
    size_bytes = model_path.stat().st_size
    sup = Path(src.supernet)
    protocol = measured.protocol
    prof = predicted.profile
    pred_obj = predicted.predictor
    return {
        "format": CARD_FORMAT, "version": CARD_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": {"file": out.name, "sha256": sha256_file(model_path), "size_bytes": size_bytes,
                  "opset": onnx_model.opset, "ir_version": int(m.ir_version), "dynamic_batch": onnx_model.dynamic,
                  "input": {"name": m.graph.input[0].name, "shape": ["batch", *input_shape[1:]],
                            "dtype": "float32", "normalisation": f"as data set {ds.name} (train mean/std)"},
                  "output": {"name": m.graph.output[0].name, "shape": ["batch", num_classes],
                             "meaning": "logits", "classes": list(ds.classes)},
                  "quantized": is_quant,
                  "quantization": ({"method": "onnxruntime static QDQ, per-channel symmetric weights, "
                                              "U8 activations; weight-only where act_bits = 32",
                                    "policy": {k: list(v) for k, v in policy.items()}} if is_quant else None)},
        "deployment": None if src.b is None else src.b.deployment(),  # how to run it as it was measured
        "config": deployed.to_dict(),
        "requested_config": config.to_dict(),
        "provenance": {
            "supernet": {"path": str(sup.resolve()), "sha256": sha256_file(sup),
                         "meta": {k: meta.get(k) for k in ("data", "data_seed", "epochs") if k in meta}},
            "data": {"name": ds.name, "seed": ds.seed, "splits": ds.split_sizes()},
            "calibration": {"batches": src.calib_batches, "batch_size": src.calib_batch_size, "seed": src.seed,
                            "split": "train"},
            "table": (None if table_obj is None else {
                "path": str(table) if isinstance(table, (str, os.PathLike)) else None,
                "device_tag": getattr(table_obj, "device_tag", None),
                "fingerprint": _fingerprint_of(table_obj),
                # around subnets timed whole (a pipeline's picks): what the prediction was corrected with
                "correction": (table_obj.correction.summary() if getattr(table_obj, "correction", None) is not None
                               else None)}),
            "predictor": (None if pred_obj is None else {
                "path": str(predictor) if isinstance(predictor, (str, os.PathLike)) else None,
                "kind": type(pred_obj).__name__}),
            "backend": None if backend is None else {"name": backend, "fingerprint": measured.fingerprint,
                                                     "protocol": protocol.to_dict() if protocol else None},
            "query": dict(src.query_provenance) if src.query_provenance else None,
            "hwnas": {"python": platform.python_version(), "torch": torch.__version__,
                      "onnx": onnx.__version__, "onnxruntime": _ort_version()},
        },
        "predicted": {"accuracy": predicted.accuracy, "accuracy_source": predicted.accuracy_source,
                      "latency_ms": predicted.latency_ms, "latency_source": predicted.latency_source,
                      "size_bytes": prof.size_bytes, "macs": prof.macs, "params": prof.params},
        "measured": {"accuracy": checked.acc, "accuracy_split": "test", "n_test_images": checked.n_test,
                     "torch_accuracy": checked.torch_acc,
                     "holdout_accuracy": checked.holdout_acc,
                     "holdout_images": checked.holdout_images,  # [first, end)
                     "latency_ms": measured.latency_ms,
                     "latency_at_table_speed_ms": measured.at_table_speed_ms,
                     "reference": measured.reference,
                     "latency": measured.measurement, "size_bytes": size_bytes},
        "verification": {"reference": "PyTorch subnet" + (" (fake-quantized)" if is_quant else ""),
                         "runtime": checked.runtime,
                         "split": "test", "n_images": checked.n_ref, "max_abs_diff": checked.max_abs,
                         "max_rel_diff": checked.max_rel, "top1_agreement": checked.agree,
                         "onnx_checker": "passed (full_check)"},
        "export_seconds": None,
    }


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def read_card(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"card: got {str(path)!r}, allowed: an existing model card JSON file")
    card = json.loads(p.read_text(encoding="utf-8"))
    if card.get("format") != CARD_FORMAT:
        raise InputError(f"card: {path} is not an hwnas model card")
    return card


__all__ = ["ExportReport", "card_path_for", "export_subnet", "read_card"]
