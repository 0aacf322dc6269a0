"""Verified ONNX export: float and quantized subnets of a quickly trained tiny supernet (real digits data),
run by onnxruntime and checked against PyTorch, with the model card checked against the files."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner

from latency_tables import LatencyTable
from latency_tables.protocol import Protocol
from latency_tables.quantize import onnx_conv_module_names
from nas.checkpoint import save_supernet
from nas.cli.main import cli
from nas.data import load_data
from nas.export import ExportConfig, card_path_for, export_subnet
from nas.front import FrontEntry
from nas.store import ResultsStore
from predictors import create_predictor
from search_spaces import InputError, SubnetConfig, get_space

QUICK = Protocol.quick()


def _config() -> SubnetConfig:
    sp = get_space("mbv3-tiny")
    return sp.sample(np.random.default_rng(5), quantize=False).replace(resolution=16)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny supernet whose subnet `_config()` is trained for 3 epochs on digits (~95 % test accuracy), so
    top-1 agreement is measured on a network that really separates the classes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 shared cores: more threads only contend
    torch.manual_seed(0)
    sp = get_space("mbv3-tiny")
    data = load_data("digits", seed=0, in_channels=1, image_size=32)
    net = sp.build_supernet()
    cfg = _config()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    net.train()
    net.set_active(cfg)
    for _ in range(3):
        for x, y in data.batches("train", cfg.resolution, 64, shuffle=True, generator=g):
            loss = torch.nn.functional.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    path = tmp_path_factory.mktemp("supernet") / "supernet.pt"
    save_supernet(path, net.eval(), {"data": "digits", "data_seed": 0, "epochs": 3})
    yield path, cfg, data
    torch.set_num_threads(threads)


def _ort_logits(path: Path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})[0]


def test_float_export_matches_pytorch_and_card_is_true(trained, tmp_path):
    sup, cfg, data = trained
    entry = FrontEntry(cfg, 93.0, 0.4, 1, 1)  # a stored prediction for exactly this subnet
    out = tmp_path / "model.onnx"
    r = export_subnet(ExportConfig(supernet=sup, config=cfg, out=out, backend="ort-cpu", protocol=QUICK, entry=entry))
    assert r.max_rel_diff <= 1e-4 and r.top1_agreement == 100.0 and not r.quantized
    assert r.accuracy > 80.0  # the trained subnet really classifies digits
    assert r.opset >= 17 and r.latency_ms is not None and r.latency_ms > 0
    assert (r.predicted_accuracy, r.predicted_latency_ms) == (93.0, 0.4)
    assert r.latency_at_table_speed_ms is None and r.reference_drift is None  # no table to compare speeds with

    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # dynamic batch
    x, y = data.at("test", cfg.resolution)
    for n in (1, 7):  # any batch size runs
        assert _ort_logits(out, x[:n].numpy()).shape == (n, 10)
    logits = _ort_logits(out, x.numpy())
    acc = 100.0 * float((logits.argmax(1) == y.numpy()).mean())

    card = json.loads(card_path_for(out).read_text())
    assert card_path_for(out).name == "model.card.json"
    assert SubnetConfig.from_dict(card["config"]) == cfg
    assert card["model"]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert card["model"]["size_bytes"] == out.stat().st_size == r.size_bytes
    assert card["model"]["opset"] == r.opset and card["model"]["dynamic_batch"] is True
    assert card["provenance"]["supernet"]["sha256"] == hashlib.sha256(Path(sup).read_bytes()).hexdigest()
    assert card["provenance"]["supernet"]["path"] == str(Path(sup).resolve())
    assert card["provenance"]["data"]["name"] == "digits"
    assert card["provenance"]["backend"]["name"] == "ort-cpu" and card["provenance"]["backend"]["fingerprint"]
    assert card["measured"]["accuracy"] == pytest.approx(acc) == r.accuracy
    assert card["measured"]["latency_ms"] == r.latency_ms
    assert card["predicted"]["accuracy"] == 93.0 and card["predicted"]["accuracy_source"] == "front entry"
    assert card["predicted"]["size_bytes"] == get_space("mbv3-tiny").profile(cfg).size_bytes
    assert card["verification"]["max_abs_diff"] == r.max_abs_diff
    assert card["verification"]["n_images"] == len(y)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.card.json", "model.onnx"]  # no temporaries left


def test_int8_export_keeps_top1(trained, tmp_path):
    sup, cfg, data = trained
    q = cfg.with_bits(8, 8)
    out = tmp_path / "int8.onnx"
    r = export_subnet(ExportConfig(supernet=sup, config=q, out=out, quantize=True, backend=None))
    assert r.quantized and r.config == q
    assert r.top1_agreement >= 98.0, r
    assert r.accuracy >= r.torch_accuracy - 2.0
    model = onnx.load(str(out))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") > 0 and ops.count("DequantizeLinear") > 0
    card = json.loads(card_path_for(out).read_text())
    assert card["model"]["quantized"] is True and card["model"]["dynamic_batch"] is True
    policy = card["model"]["quantization"]["policy"]
    assert len(policy) == 3 * q.n_blocks and all(v == [8, 8] for v in policy.values())
    # agreement recomputed independently: the written file vs a freshly extracted, recalibrated PyTorch subnet
    from nas.checkpoint import load_supernet
    from nas.train import calibration_batches
    from search_spaces.supernet import recalibrate

    net, _ = load_supernet(sup)
    ref = recalibrate(net.extract(q), calibration_batches(data, q.resolution, 8, 128, 0)).eval()
    x, _ = data.at("test", q.resolution)
    with torch.no_grad():
        want = ref(x).argmax(1).numpy()
    got = _ort_logits(out, x.numpy()).argmax(1)
    assert 100.0 * float((got == want).mean()) == pytest.approx(r.top1_agreement)
    assert card["verification"]["top1_agreement"] == r.top1_agreement


def test_mixed_policy_leaves_32_bit_layers_float(trained, tmp_path):
    sup, cfg, _ = trained
    n = cfg.n_blocks
    wb = tuple(32 if j % 2 == 0 else (8 if j % 4 == 1 else 4) for j in range(n))
    ab = tuple(32 if w == 32 else 8 for w in wb)
    q = cfg.replace(weight_bits=wb, act_bits=ab)
    # a real latency table file holding exactly this subnet's blocks, and a real (tiny) accuracy predictor
    sp = get_space("mbv3-tiny")
    blocks = sp.blocks(q)
    fp = {"backend": "ort-cpu", "device": "test", "threads": 1}
    table = LatencyTable("mbv3-tiny", "test-cpu", "ort-cpu", fp, QUICK.to_dict(), [q.resolution],
                         {b.key: {"median_ms": 0.01 * (i + 1), "std_ms": 0.0, "count": 1} for i, b in enumerate(blocks)})
    table.save(tmp_path / "table.json")
    pred = create_predictor("gbt", sp).fit(sp.sample_many(40, 1), np.linspace(60.0, 90.0, 40))
    out = tmp_path / "mixed.onnx"
    r = export_subnet(ExportConfig(supernet=sup, config=q, out=out, quantize=True, backend=None,
                                   table=tmp_path / "table.json", predictor=pred))
    assert r.top1_agreement >= 95.0, r
    assert r.predicted_latency_ms == pytest.approx(0.01 * len(blocks) * (len(blocks) + 1) / 2)
    assert r.predicted_accuracy == pytest.approx(float(pred.predict([q])[0]))
    card = json.loads(card_path_for(out).read_text())
    assert card["provenance"]["table"] == {"path": str(tmp_path / "table.json"), "device_tag": "test-cpu",
                                           "fingerprint": fp, "correction": None}  # not corrected by a search
    assert card["provenance"]["predictor"]["kind"] == "GBTPredictor"
    assert card["predicted"]["latency_source"] == "latency table"
    assert card["predicted"]["accuracy_source"] == "predictor"
    model = onnx.load(str(out))
    assert r.opset >= 21  # int4 weights need DequantizeLinear on INT4
    producers = {o: node for node in model.graph.node for o in node.output}
    inits = {t.name: t for t in model.graph.initializer}
    names = onnx_conv_module_names(model)
    for j in range(n):
        for part in ("expand", "depthwise", "pointwise"):
            node = next(nd for nd in model.graph.node if nd.name == names[f"blocks.{j}.{part}.conv"])
            w_src = producers.get(node.input[1])
            if wb[j] == 32:  # float weight initializer, no dequantization
                assert node.input[1] in inits and inits[node.input[1]].data_type == onnx.TensorProto.FLOAT
            else:
                assert w_src is not None and w_src.op_type == "DequantizeLinear"
                qt = inits[w_src.input[0]].data_type
                assert qt == (onnx.TensorProto.INT4 if wb[j] == 4 else onnx.TensorProto.INT8)


def test_latency_at_the_table_speed(trained, tmp_path):
    """Against a load-normalized table, the export is timed next to the table's reference model: its latency at
    the build's speed is its ratio to the reference times the reference's latency then, and the drift is how the
    reference's latency now compares. The table here says the reference took 1 s during its build (a far slower
    machine), so every figure differs from the plain one by a factor the test can check."""
    from latency_tables.models import reference_model_spec

    sup, cfg, _ = trained
    sp = get_space("mbv3-tiny")
    fp = {"backend": "ort-cpu", "device": "test", "threads": 1}
    entries = {b.key: {"median_ms": 0.05, "std_ms": 0.0, "count": 1, "ref_ms": 1000.0, "ref_ratio": 0.1}
               for b in sp.blocks(cfg)}
    table = LatencyTable("mbv3-tiny", "test-cpu", "ort-cpu", fp, QUICK.to_dict(), [cfg.resolution], entries,
                         reference_model=reference_model_spec(sp, [cfg.resolution]))
    assert table.normalized and table.reference_ms == 1000.0
    table.save(tmp_path / "table.json")
    r = export_subnet(ExportConfig(supernet=sup, config=cfg, out=tmp_path / "m.onnx", backend="ort-cpu",
                                   table=tmp_path / "table.json"))  # the table's own protocol
    card = json.loads(card_path_for(tmp_path / "m.onnx").read_text())
    timing, reference = card["measured"]["latency"], card["measured"]["reference"]
    assert card["provenance"]["backend"]["protocol"] == QUICK.to_dict()
    assert 0 < timing["ref_ms"] < 1000.0 and timing["ref_ratio"] > 0
    assert r.latency_at_table_speed_ms == pytest.approx(timing["ref_ratio"] * 1000.0)
    assert r.reference_drift == pytest.approx(timing["ref_ms"] / 1000.0 - 1) == reference["drift"]
    assert reference == {"ms_now": timing["ref_ms"], "ms_at_build": 1000.0, "drift": r.reference_drift}
    assert card["measured"]["latency_at_table_speed_ms"] == r.latency_at_table_speed_ms
    # the plain median and the ratio describe the same runs
    assert r.latency_ms == pytest.approx(timing["ref_ratio"] * timing["ref_ms"], rel=0.3)


def test_cli_export_from_a_query(trained, tmp_path):
    sup, cfg, _ = trained
    db = tmp_path / "results.db"
    q = cfg.with_bits(8, 8)
    with ResultsStore(db) as st:
        st.add_front([FrontEntry(q, 91.5, 0.3, 500_000, 10), FrontEntry(cfg, 95.0, 9.0, 2_000_000, 20)],
                     space="mbv3-tiny", device_tag="test-cpu", device_fingerprint="fp", dataset="digits",
                     predictor="p1")
    out = tmp_path / "m.onnx"
    res = CliRunner().invoke(cli, ["export", "--supernet", str(sup), "--query", "--store", str(db), "--device",
                                   "test-cpu", "--latency-ms", "1", "--out", str(out), "--quantize",
                                   "--backend", "none", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output.strip().splitlines()[-1])
    for k in ("max_abs_diff", "top1_agreement", "accuracy", "predicted_accuracy", "latency_ms",
              "predicted_latency_ms", "size_bytes"):
        assert k in d
    assert d["predicted_accuracy"] == 91.5 and d["predicted_latency_ms"] == 0.3  # from the stored entry
    assert d["top1_agreement"] >= 98.0 and d["size_bytes"] == out.stat().st_size
    card = json.loads(card_path_for(out).read_text())
    assert card["provenance"]["query"]["device_tag"] == "test-cpu"
    assert card["provenance"]["query"]["budgets"] == {"latency_ms": 1.0}
    assert SubnetConfig.from_dict(card["config"]) == q


def test_export_bad_input(trained, tmp_path):
    sup, cfg, _ = trained
    runner = CliRunner()
    res = runner.invoke(cli, ["export", "--supernet", str(sup), "--config", str(tmp_path / "no.json"),
                              "--out", str(tmp_path / "x.onnx")])
    assert res.exit_code == 2 and "--config: got" in res.output
    other = get_space("mbv3").smallest()
    with pytest.raises(InputError, match="config.space: got 'mbv3', allowed: 'mbv3-tiny'"):
        export_subnet(ExportConfig(supernet=sup, config=other, out=tmp_path / "y.onnx", backend=None))
    res = runner.invoke(cli, ["export", "--supernet", str(tmp_path / "none.pt"), "--config", "c.json",
                              "--out", str(tmp_path / "z.onnx")])
    assert res.exit_code == 2 and "supernet: got" in res.output
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def _table_for(cfg: SubnetConfig, backend: str, precision: str, path: Path) -> Path:
    """A table file of `backend` at `precision` holding exactly `cfg`'s blocks (its numbers do not matter here)."""
    fp = {"backend": backend, "device": "test", "threads": 1, "batch_size": 1, "precision": precision}
    blocks = get_space("mbv3-tiny").blocks(cfg)
    LatencyTable("mbv3-tiny", "test-cpu", backend, fp, QUICK.to_dict(), [cfg.resolution],
                 {b.key: {"median_ms": 0.01, "std_ms": 0.0, "count": 1} for b in blocks}).save(path)
    return path


@pytest.mark.parametrize("bits,precision", [((8, 8), "fp32"), ((32, 32), "bf16")], ids=["int8", "bf16"])
def test_export_runs_on_openvino_with_top1_agreement(trained, tmp_path, bits, precision):
    """The int8 QDQ model and the 16-bit deployment (the float ONNX compiled with the bf16 precision hint) run on
    OpenVINO and agree with PyTorch on the test split; the card says how to compile it."""
    from latency_tables import BACKENDS, get_backend

    ok, reason = BACKENDS.get("openvino-cpu").available()
    if not ok:
        pytest.skip(reason)
    missing = get_backend("openvino-cpu", precision=precision).precision_unavailable()
    if missing:
        pytest.skip(missing)
    sup, cfg, _ = trained
    q = cfg.with_bits(*bits)
    table = _table_for(q, "openvino-cpu", precision, tmp_path / "table.json")
    r = export_subnet(ExportConfig(supernet=sup, config=q, out=tmp_path / "m.onnx", quantize=True,
                                   backend="openvino-cpu", table=table, protocol=QUICK))
    assert r.top1_agreement >= 98.0, r
    assert r.latency_ms is not None and r.latency_ms > 0
    card = json.loads(card_path_for(tmp_path / "m.onnx").read_text())
    assert card["verification"]["runtime"] == "openvino-cpu"
    hint = {"fp32": "f32", "bf16": "bf16"}[precision]
    assert card["deployment"]["compile_config"] == {"INFERENCE_NUM_THREADS": 1, "PERFORMANCE_HINT": "LATENCY",
                                                    "INFERENCE_PRECISION_HINT": hint, "ENABLE_CPU_PINNING": False}
    assert card["provenance"]["backend"]["fingerprint"]["precision"] == precision
    if precision == "bf16":  # 16-bit changes the numbers a little, not the answers
        assert 0 < r.max_rel_diff < 0.1


def test_export_refuses_a_table_of_another_runtime(trained, tmp_path):
    sup, cfg, _ = trained
    table = _table_for(cfg, "ort-cpu", "fp32", tmp_path / "ort.json")
    with pytest.raises(InputError, match="^backend: got 'openvino-cpu', but the latency table was measured with "
                                         "'ort-cpu'; allowed: 'ort-cpu'"):
        export_subnet(ExportConfig(supernet=sup, config=cfg, out=tmp_path / "m.onnx", backend="openvino-cpu",
                                   table=table))
    (tmp_path / "c.json").write_text(cfg.to_json())
    res = CliRunner().invoke(cli, ["export", "--supernet", str(sup), "--config", str(tmp_path / "c.json"),
                                   "--out", str(tmp_path / "m.onnx"), "--backend", "openvino-cpu",
                                   "--table", str(table)])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert "--backend: got 'openvino-cpu'" in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json", "ort.json"]
