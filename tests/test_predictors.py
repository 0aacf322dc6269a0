"""Accuracy predictors: every registered kind passes the contract shipped in `predictors.testing`; the
quantization-aware transfer, the bundle, the dataset reader, the metrics and `hwnas predictor fit`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from predictors import (
    PREDICTORS, AccuracyPredictor, FeatureLayout, QuantAwareMLPPredictor, ResidualTransferPredictor, create_predictor,
    FitConfig, fit_predictor, label_reliability, load_accuracy_dataset, load_predictor, rank_metrics, synthetic_accuracy,
)
from predictors.bundle import MANIFEST
from predictors.testing import PredictorContract, contract_data
from predictors.base import soft_clip
from predictors.metrics import binomial_variance
from search_spaces import HwnasError, InputError, get_space


@pytest.fixture(scope="module")
def space():
    return get_space("mbv3-tiny")


@pytest.fixture(scope="module")
def data(space):
    """Train / test indices and synthetic accuracies, float and quantized."""
    return contract_data(space)


class TestRegisteredPredictors(PredictorContract):
    # residual-gp predicts a correction, not an accuracy (zero far from what it saw): its own test below
    @pytest.fixture(params=[k for k in PREDICTORS.names() if k != "residual-gp"])
    def predictor_kind(self, request) -> str:
        return request.param


def _optimistic_region(space, data):
    """A ridge predictor, 12 neighbours of one subnet (one or two kernel / expand choices changed, as a search's
    picks are) and 20 far subnets, and labels 6 points under the predictor in that region."""
    import dataclasses

    x, y = data["fp_train"]
    base = AccuracyPredictor(create_predictor("ridge", space).fit(x, y))
    center = space.sample(np.random.default_rng(31), quantize=False)
    rng = np.random.default_rng(32)
    region = []
    while len(region) < 12:
        k, e = list(center.kernel), list(center.expand)
        for _ in range(int(rng.integers(1, 3))):
            i = int(rng.integers(len(k)))
            k[i], e[i] = int(rng.choice(space.spec.kernel_choices)), int(rng.choice(space.spec.expand_choices))
        c = dataclasses.replace(center, kernel=tuple(k), expand=tuple(e))
        if c not in region:
            region.append(c)
    far = [c for c in space.sample_many(400, 33, quantize=False) if c.depths != center.depths][:20]
    truth = lambda cs: synthetic_accuracy(space, space.to_indices(cs), seed=0)  # noqa: E731
    # the optimism to correct: labels 6 points under the base figures (plus its own error)
    labels = lambda cs: base.predict(cs) - 6.0 - (base.predict(cs) - truth(cs))  # noqa: E731
    return base, region, far, labels


def test_residual_gp_corrects_where_it_saw_labels(space, data, tmp_path):
    """A predictor that is 6 points optimistic in one region (the neighbours of one subnet, as a search's picks
    are): labelled subnets there correct it there -- the labelled ones and unlabelled ones of that region alike --
    while subnets far from them keep the base figure; the corrected bundle saves and loads to the same numbers."""
    base, region, far, label_of = _optimistic_region(space, data)
    labelled, unseen = region[:8], region[8:12]
    labels = label_of(labelled)
    fixed = base.with_correction(labelled, labels, seed=0)
    assert fixed.correction is not None and base.correction is None
    err_before = np.abs(base.predict(labelled) - labels).mean()
    err_after = np.abs(fixed.predict(labelled) - labels).mean()
    assert err_before > 5.5 and err_after < 1.5, (err_before, err_after)
    moved = base.predict(unseen) - fixed.predict(unseen)
    assert (moved > 2.0).all(), moved  # the region's other subnets move with it
    assert np.abs(base.predict(far) - fixed.predict(far)).max() < 1.0  # far away: the base figure stands
    fixed.save(tmp_path / "p")
    loaded = load_predictor(tmp_path / "p")
    assert loaded.correction is not None and loaded.correction.kind == "residual-gp"
    np.testing.assert_array_equal(loaded.predict(far + unseen), fixed.predict(far + unseen))
    np.testing.assert_array_equal(base.with_correction(labelled, labels, seed=0).predict(unseen),
                                  fixed.predict(unseen))  # seeded: the same fit


def test_residual_gp_shrinks_a_lucky_label_by_its_binomial_noise(space, data):
    """Told how many images each label was measured on, the correction takes a label as a measurement with
    binomial noise: one lucky label (3 points over its neighbours' level, on 600 images: +-1.6) is shrunk towards
    them, by several times what the same label on 20,000 images is; the region's level is still corrected."""
    base, region, _, label_of = _optimistic_region(space, data)
    labelled = region[:8]
    labels = label_of(labelled)
    labels[0] += 3.0
    fixed = {n: base.with_correction(labelled, labels, seed=0, images=n) for n in (600, 20000)}
    shrunk = {n: labels[0] - float(f.predict(labelled[:1])[0]) for n, f in fixed.items()}
    assert shrunk[600] > 0.3 and shrunk[600] > 5 * shrunk[20000], shrunk
    rest = np.abs(fixed[600].predict(labelled[1:]) - labels[1:]).mean()
    assert rest < 1.5 and np.abs(base.predict(labelled[1:]) - labels[1:]).mean() > 5.5, rest
    # the variance a label is given: p(1 - p) / N in percent^2 (p smoothed by half an image)
    np.testing.assert_allclose(binomial_variance([85.0, 100.0], 2000), [85 * 15 / 2000, 0.0], atol=0.01)
    assert binomial_variance([100.0], 600)[0] > 0


def test_mlp_spread_and_batched_fast_path(space, data):
    x, y = data["fp_train"]
    mlp = create_predictor("mlp", space, epochs=60).fit(x, y)
    mean, std = mlp.predict_with_std(data["fp_test"][0])
    assert (std > 0).all() and np.array_equal(mean, mlp.predict(data["fp_test"][0]))
    # the fused inference path equals the plain one-hot MLP
    import torch

    xt = data["fp_test"][0][:50]
    with torch.no_grad():
        dense = mlp.net(onehot=torch.from_numpy(space.encode(xt, quant=False))).double().numpy()
    np.testing.assert_allclose(mlp.predict(xt), dense.mean(1) * mlp.y_std + mlp.y_mean, atol=1e-4)
    with pytest.raises(HwnasError, match="no spread"):
        create_predictor("gbt", space, max_iter=5).fit(x, y).predict_with_std(x)


def test_feature_layout_matches_encode(space, data):
    idx = data["q_test"][0]
    for quant in (False, True):
        layout = FeatureLayout(space, quant)
        np.testing.assert_array_equal(layout.onehot(idx), space.encode(idx, quant=quant))
        w = np.random.default_rng(0).normal(size=(layout.n_features, 3))
        np.testing.assert_allclose(layout.joint_table(w)[layout.joint_ids(idx)].sum(1),
                                   space.encode(idx, quant=quant) @ w, atol=1e-9)
    np.testing.assert_array_equal(FeatureLayout(space, True).decode(space.encode(idx)), idx)


# ---- quantization-aware transfer ----------------------------------------------------------------------------
@pytest.mark.parametrize("transfer", ["residual", "finetune"])
def test_qa_transfer_starts_as_fp_and_improves(space, data, transfer):
    fp = create_predictor("mlp", space, seed=0).fit(*data["fp_train"])
    qa = QuantAwareMLPPredictor.from_fp(fp, transfer=transfer)
    xq, yq = data["q_test"]
    xf = data["fp_test"][0]
    # before fitting: exactly the fp model, on float and on quantized configs
    np.testing.assert_allclose(qa.predict(xq), fp.predict(xq), atol=1e-5)
    np.testing.assert_allclose(qa.predict(xf), fp.predict(xf), atol=1e-5)
    before = rank_metrics(yq, qa.predict(xq))
    qa.fit(data["q_train"][0][:100], data["q_train"][1][:100])
    after = rank_metrics(yq, qa.predict(xq))
    assert after["kendall_tau"] > before["kendall_tau"] + 0.05, (before, after)
    assert after["rmse"] < before["rmse"], (before, after)
    if transfer == "residual":
        # the frozen fp network plus a cost of quantized blocks only: float configs keep the fp prediction, and
        # the costliest features are 4-bit weights (the synthetic target's main penalty)
        np.testing.assert_allclose(qa.predict(xf), fp.predict(xf), atol=1e-5)
        assert qa.train_info["largest_costs"][0][0].startswith(("weight_bits=4", "count weight_bits=4"))
        assert qa.train_info["largest_costs"][0][1] < 0
    with pytest.raises(InputError, match="hidden"):
        QuantAwareMLPPredictor.from_fp(fp, hidden=fp.hidden + 1)
    with pytest.raises(InputError, match="transfer: got 'magic'"):
        QuantAwareMLPPredictor.from_fp(fp, transfer="magic")
    with pytest.raises(HwnasError, match="not fitted"):
        QuantAwareMLPPredictor.from_fp(create_predictor("mlp", space))


def test_residual_transfer_from_any_fp_kind(space, data):
    fp = create_predictor("gbt", space, max_iter=80).fit(*data["fp_train"])
    qa = ResidualTransferPredictor.from_fp(fp)
    xq, yq = data["q_test"]
    np.testing.assert_array_equal(qa.predict(xq), fp.predict(xq))  # before fitting: the fp model
    before = rank_metrics(yq, qa.predict(xq))["kendall_tau"]
    qa.fit(*(a[:100] for a in data["q_train"]))
    assert rank_metrics(yq, qa.predict(xq))["kendall_tau"] > before + 0.1
    xf = data["fp_test"][0]
    np.testing.assert_array_equal(qa.predict(xf), fp.predict(xf))  # float configs: no correction
    with pytest.raises(HwnasError, match="from_fp"):
        create_predictor("qa-residual", space).fit(*data["q_train"])
    with pytest.raises(HwnasError, match="not fitted"):
        ResidualTransferPredictor.from_fp(create_predictor("gbt", space))
    with pytest.raises(InputError, match="fp: got"):
        ResidualTransferPredictor.from_fp(create_predictor("gbt", space, quant=True).fit(*data["q_train"]))


def test_quantization_aware_model_is_chosen_by_cross_validation(space, data):
    from predictors.quant_fit import fit_quant_model

    fx, fy = data["fp_train"]
    qx, qy = data["q_train"]
    idx, y = np.concatenate([fx, qx]), np.concatenate([fy, qy])
    fp_rows, q_rows = np.arange(len(fy)), len(fy) + np.arange(len(qy))
    fp = create_predictor("gbt", space, max_iter=80).fit(fx, fy)
    # the synthetic target charges for 4-bit blocks: the frozen fp model plus a fitted cost ranks far better than
    # trees that must find the bit-widths among all features
    qa, sel = fit_quant_model(fp, idx, y, fp_rows, q_rows[:120])
    assert sel["cv_folds"] == 4 and sel["chosen"] == "transfer" == max(sel["kendall_tau"], key=sel["kendall_tau"].get)
    assert isinstance(qa, ResidualTransferPredictor) and sel["kendall_tau"]["transfer"] > sel["kendall_tau"]["joint"]
    # where quantization costs nothing, the quantized records are more architecture samples for a joint model
    s = space.spec
    as_float = qx.copy()
    for col, choices in ((4, s.weight_bit_choices), (5, s.act_bit_choices)):  # bit columns of each position
        bits = as_float[:, s.n_stages + col :: 5]
        bits[bits >= 0] = choices.index(32)
    free = synthetic_accuracy(space, as_float, seed=0, noise=0.1)
    _, sel_free = fit_quant_model(fp, idx, np.concatenate([fy, free]), fp_rows, q_rows)
    assert sel_free["chosen"] == "joint", sel_free
    few, sel_few = fit_quant_model(fp, idx, y, fp_rows, q_rows[:5])  # too few to cross-validate: the transfer
    assert sel_few == {"cv_folds": 0, "kendall_tau": {}, "chosen": "transfer"} and few.kind == "qa-residual"


def test_sample_weights_and_replay(space, data):
    from predictors.qa import replay_weights

    w = replay_weights(50, 1000)
    assert w.shape == (1050,) and w[:50].sum() == pytest.approx(w[50:].sum() / 2) and (w[50:] == 1).all()
    assert (replay_weights(900, 100) == 1).all()  # enough quantized samples: no up-weighting
    x, y = data["fp_train"]
    # a zero weight removes a sample: gbt fitted on weights (1, 0) equals gbt fitted on the first half
    half = len(y) // 2
    w01 = np.r_[np.ones(half), np.zeros(len(y) - half)]
    a = create_predictor("gbt", space, max_iter=20, min_samples_leaf=5).fit(x, y, sample_weight=w01)
    b = create_predictor("gbt", space, max_iter=20, min_samples_leaf=5).fit(x[:half], y[:half])
    assert rank_metrics(b.predict(data["fp_test"][0]), a.predict(data["fp_test"][0]))["kendall_tau"] > 0.8
    with pytest.raises(InputError, match="sample_weight"):
        create_predictor("mlp", space).fit(x, y, sample_weight=np.ones(3))
    with pytest.raises(InputError, match="sample_weight"):
        create_predictor("mlp", space).fit(x, y, sample_weight=-np.ones(len(y)))


# ---- bundle, persistence errors ------------------------------------------------------------------------------
def test_bundle_routes_quantized_configs_and_loads_only_for_its_space(space, data, tmp_path):
    fp = create_predictor("mlp", space, epochs=60).fit(*data["fp_train"])
    qa = QuantAwareMLPPredictor.from_fp(fp).fit(*data["q_train"])
    bundle = AccuracyPredictor(fp, qa)
    mixed = np.concatenate([data["fp_test"][0][:20], data["q_test"][0][:20]])
    expect = np.concatenate([fp.predict(mixed[:20]), qa.predict(mixed[20:])])
    np.testing.assert_allclose(bundle.predict(mixed), expect, atol=1e-12)
    bundle.save(tmp_path / "pred")
    bundle.save(tmp_path / "pred")  # replacing an existing directory works
    manifest = json.loads((tmp_path / "pred" / MANIFEST).read_text())
    assert manifest["space"] == "mbv3-tiny" and set(manifest["models"]) == {"fp", "qa"}
    loaded = load_predictor(tmp_path / "pred")
    assert loaded.space == "mbv3-tiny"
    mean, std = loaded.predict_with_std(mixed)
    np.testing.assert_array_equal(mean, bundle.predict(mixed))
    assert std.shape == mean.shape
    with pytest.raises(InputError, match=r"predictor space: got 'mbv3-tiny'.*allowed: 'mbv3'"):
        load_predictor(tmp_path / "pred", space="mbv3")
    with pytest.raises(InputError, match="config.space"):
        loaded.predict(get_space("mbv3").sample_many(2, 0))
    with pytest.raises(InputError, match="indices shape"):
        loaded.predict(np.zeros((3, 5), dtype=np.int16))
    bad = mixed[:2].copy()
    bad[0, 0] = 99
    with pytest.raises(InputError, match="indices column 'resolution'"):
        loaded.predict(bad)
    # a file saved for one layout refuses another
    manifest["models"]["fp"]["layout"]["fingerprint"] = "0" * 16
    (tmp_path / "pred" / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="feature layout"):
        load_predictor(tmp_path / "pred")
    with pytest.raises(InputError, match="predictor: got"):
        load_predictor(tmp_path / "missing")


def test_bad_options_and_kinds(space):
    with pytest.raises(InputError, match=r"unknown predictor kind 'mpl'.*closest: mlp"):
        create_predictor("mpl", space)
    with pytest.raises(InputError, match="mlp option 'hiden'"):
        create_predictor("mlp", space, hiden=3)
    with pytest.raises(InputError, match="hidden: got 0"):
        create_predictor("mlp", space, hidden=0)
    with pytest.raises(HwnasError, match="not fitted"):
        create_predictor("mlp", space).predict(space.sample_many(2, 0))


def test_rank_metrics():
    m = rank_metrics([1, 2, 3, 4], [10, 20, 30, 40])
    assert m["kendall_tau"] == pytest.approx(1) and m["spearman"] == pytest.approx(1)
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean(np.array([9, 18, 27, 36]) ** 2)))
    assert rank_metrics([1, 2, 3], [5, 5, 5])["kendall_tau"] == 0.0
    assert rank_metrics([1, 2, 3, 4], [4, 3, 2, 1])["kendall_tau"] == pytest.approx(-1)
    with pytest.raises(InputError, match="y_pred length"):
        rank_metrics([1, 2], [1])


def test_label_reliability_recovers_the_noise_level():
    """Halves = truth + independent noise of known size: the Spearman-Brown reliability and the tau ceiling match
    the values the noise implies, and a perfect predictor of the truth scores about the ceiling against labels."""
    rng = np.random.default_rng(0)
    truth = rng.normal(95, 2.0, 4000)
    halves = truth[:, None] + rng.normal(0, 2.0, (4000, 2))  # each half: noise sd = signal sd
    labels = halves.mean(1)  # full-split label: noise variance halved -> reliability 1 / (1 + 0.5) = 2/3
    rel = label_reliability(halves)
    assert rel["reliability"] == pytest.approx(2 / 3, abs=0.03) and rel["n"] == 4000
    assert rel["split_half_pearson"] == pytest.approx(0.5, abs=0.03)
    assert rank_metrics(labels, truth)["kendall_tau"] == pytest.approx(rel["tau_ceiling"], abs=0.03)
    clean = label_reliability(np.stack([truth, truth + 1e-3 * rng.normal(size=4000)], 1))
    assert clean["tau_ceiling"] > 0.98
    assert label_reliability(np.full((5, 2), np.nan))["n"] == 0
    with pytest.raises(InputError, match="halves shape"):
        label_reliability(np.zeros((4, 3)))


# ---- the accuracy dataset --------------------------------------------------------------------------------------
def _write_dataset(path: Path, space, n_fp: int, n_q: int, torn: bool = False) -> None:
    configs = space.sample_many(n_fp, 21, quantize=False) + space.sample_many(n_q, 22, quantize=True)
    acc = synthetic_accuracy(space, configs, noise=0.1)
    noise = np.random.default_rng(5).normal(0, 0.3, (len(configs), 2))
    lines = [json.dumps({"config": c.to_dict(), "accuracy": float(a), "quantized": c.is_quantized, "split": "holdout",
                         "data": "synthetic", "supernet": "sha256:abc", "seconds": 0.01,
                         **({"accuracy_halves": [float(a + e[0]), float(a + e[1])]} if i % 2 else {})})
             for i, (c, a, e) in enumerate(zip(configs, acc, noise))]
    text = "\n".join(lines) + "\n"
    if torn:
        text += lines[0][: len(lines[0]) // 2]
    path.write_text(text)


def test_dataset_reader(space, tmp_path):
    p = tmp_path / "acc.jsonl"
    _write_dataset(p, space, 30, 20, torn=True)
    ds = load_accuracy_dataset(p)
    assert ds.space == "mbv3-tiny" and len(ds) == 50 and ds.skipped_torn_line
    assert ds.quantized.sum() == 20 and ds.accuracy.dtype == np.float64
    assert ds.sources == {"data": ["synthetic"], "supernet": ["sha256:abc"], "split": ["holdout"]}
    train, test = ds.split(0.3, seed=0)
    assert len(set(train) & set(test)) == 0 and len(train) + len(test) == 50
    assert np.array_equal(ds.split(0.3, seed=0)[1], test)
    # the same records in another order (parallel collection) split into the same configs, in the same order
    shuffled = ds.subset(np.random.default_rng(1).permutation(len(ds)))
    for a, b in zip(ds.split(0.3, seed=0), shuffled.split(0.3, seed=0)):
        assert [ds.configs[i] for i in a] == [shuffled.configs[i] for i in b]
    with pytest.raises(InputError, match="dataset space: got 'mbv3-tiny', allowed: 'mbv3'"):
        load_accuracy_dataset(p, space="mbv3")


def test_chosen_records_are_always_trained_on(space, tmp_path):
    """Records a search chose (`"chosen": true`) are never held out -- their architecture's other records go to
    training with them -- and the random ones split as before."""
    p = tmp_path / "acc.jsonl"
    _write_dataset(p, space, 40, 20)
    ds = load_accuracy_dataset(p)
    _, test = ds.split(0.3, seed=0)
    moved = ds.configs[int(test[0])]
    records = [json.loads(line) for line in p.read_text().splitlines()]
    extra = {**records[0], "config": moved.with_bits(8, 8).to_dict(), "quantized": True, "chosen": True}
    p.write_text("".join(json.dumps(r) + "\n" for r in [*records, extra]))
    ds2 = load_accuracy_dataset(p)
    assert ds2.chosen.tolist() == [False] * len(records) + [True]
    train2, test2 = ds2.split(0.3, seed=0)
    held = {ds2.configs[i] for i in test2}
    assert moved not in held and moved.with_bits(8, 8) in {ds2.configs[i] for i in train2}
    assert held == {ds.configs[i] for i in test} - {c for c in ds.configs if c.float_version() == moved.float_version()}
    p.write_text("".join(json.dumps(r) + "\n" for r in [*records, {**extra, "chosen": "yes"}]))
    with pytest.raises(InputError, match=r"line 61: chosen: got 'yes', allowed: true or false"):
        load_accuracy_dataset(p)


@pytest.mark.parametrize("content, message", [
    ("", "holds no records"),
    ("\n\n", "holds no records"),
    ("hello world\n", "line 1 is not JSON"),
    ("[1, 2]\n", "line 1: got list"),
    ('{"config": {}, "accuracy": 90, "quantized": false}\n', "line 1: config"),
    ('{"accuracy": 90, "quantized": false}\n', "key 'config' missing"),
])
def test_garbage_dataset_gives_clear_error(tmp_path, content, message):
    p = tmp_path / "bad.jsonl"
    p.write_text(content)
    with pytest.raises(InputError, match=message):
        load_accuracy_dataset(p)


def test_dataset_bad_values(space, tmp_path):
    c = space.sample(0, quantize=False).to_dict()
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps({"config": c, "accuracy": 190.0, "quantized": False}) + "\n")
    with pytest.raises(InputError, match="accuracy: got 190.0, allowed: a top-1 accuracy in percent"):
        load_accuracy_dataset(p)
    p.write_text(json.dumps({"config": c, "accuracy": 90.0, "quantized": True}) + "\n")
    with pytest.raises(InputError, match="quantized: got True, allowed: False"):
        load_accuracy_dataset(p)
    p.write_text(json.dumps({"config": c, "accuracy": 90.0, "quantized": False, "accuracy_halves": [90]}) + "\n")
    with pytest.raises(InputError, match="accuracy_halves: got \\[90\\], allowed: two top-1 accuracies"):
        load_accuracy_dataset(p)
    p.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError, match="not UTF-8"):
        load_accuracy_dataset(p)
    with pytest.raises(InputError, match="an existing JSON-lines file"):
        load_accuracy_dataset(tmp_path / "nope.jsonl")


def test_fit_predictor_from_dataset(space, tmp_path):
    p = tmp_path / "acc.jsonl"
    _write_dataset(p, space, 160, 100)
    bundle, report = fit_predictor(FitConfig(dataset=load_accuracy_dataset(p), kind="mlp", seed=0,
                                             test_fraction=0.25))
    assert report["n_train"] + report["n_test"] == 260 and report["n_test"] > 20
    assert set(report["models"]) == {"fp", "qa"} and report["models"]["qa"]["n_train"] > 50
    assert report["kendall_tau"] > 0.4 and report["models"]["fp"]["kendall_tau"] > 0.5, report
    rel = report["label_reliability"]  # from the half of the records that carry accuracy_halves
    assert rel["n"] == 130 and 0.5 < rel["tau_ceiling"] < 1.0
    with pytest.raises(InputError, match="kind: got 'mlp-qa'"):
        fit_predictor(FitConfig(dataset=load_accuracy_dataset(p), kind="mlp-qa"))


def test_auto_kind_is_chosen_by_cross_validation(space, tmp_path):
    p = tmp_path / "acc.jsonl"
    _write_dataset(p, space, 160, 60)
    bundle, report = fit_predictor(FitConfig(dataset=load_accuracy_dataset(p), kind="auto", seed=0,
                                             test_fraction=0.25))
    sel = report["kind_selection"]
    assert sel["cv_folds"] == 4 and set(sel["kendall_tau"]) == {"mlp", "stack"}
    # on the synthetic target the mlp ranks far better than gbt (bench_predictors: 0.92 vs 0.77 at 300 samples)
    assert sel["chosen"] == "mlp" == report["kind"] == bundle.kind, sel
    assert sel["kendall_tau"]["mlp"] > sel["kendall_tau"]["stack"] + 0.03, sel
    report = fit_predictor(FitConfig(dataset=load_accuracy_dataset(p), kind="mlp", seed=0))[1]
    assert report["kind_selection"] is None


def _kernel_flips_with_resolution(space, n=600, seed=7):
    """Configs and an accuracy where a larger kernel helps at the largest resolution and hurts at the smallest, as
    measured on the shapes supernet."""
    s = space.spec
    idx = space.to_indices(space.sample_many(n, seed, quantize=False))
    r = (np.asarray(s.resolutions, float)[idx[:, 0]] - np.mean(s.resolutions)) / np.std(s.resolutions)
    kernel = idx[:, 1 + s.n_stages :: 5]  # kernel index per position, -1 inactive
    y = 70 + 3 * r + r * np.where(kernel >= 0, kernel - 1, 0).sum(axis=1)
    return idx, y + np.random.default_rng(0).normal(0, 0.2, len(y))


def test_ridge_learns_effects_that_change_with_resolution(space):
    """The resolution-varying ridge ranks an effect that flips sign with the resolution; the constant-effect one
    (degree 0) cannot."""
    idx, y = _kernel_flips_with_resolution(space)
    taus = {}
    for degree in (0, 2):
        model = create_predictor("ridge", space, degree=degree).fit(idx[:400], y[:400])
        taus[degree] = rank_metrics(y[400:], model.predict(idx[400:]))["kendall_tau"]
    assert taus[2] > 0.8 and taus[2] > taus[0] + 0.25, taus


def test_stack_weights_follow_cross_validation(space, data):
    x, y = data["fp_train"]
    stack = create_predictor("stack", space, members=["gbt", "ridge"]).fit(x, y)
    info = stack.train_info
    assert info["cv_folds"] == 4 and set(info["cv_kendall_tau"]) == {"gbt", "ridge", "blend"}
    assert sum(info["weights"].values()) == pytest.approx(1.0)
    # the chosen blend ranks the out-of-fold predictions at least as well as either member alone
    assert info["cv_kendall_tau"]["blend"] >= max(info["cv_kendall_tau"]["gbt"], info["cv_kendall_tau"]["ridge"])
    # where one member fits the target's form and the other does not, the weight goes to the one that fits
    idx, yk = _kernel_flips_with_resolution(space)
    skewed = create_predictor("stack", space).fit(idx[:400], yk[:400])
    ridge = create_predictor("ridge", space).fit(idx[:400], yk[:400])
    assert skewed.train_info["weights"]["ridge"] >= 0.7, skewed.train_info
    assert (rank_metrics(yk[400:], skewed.predict(idx[400:]))["kendall_tau"]
            >= rank_metrics(yk[400:], ridge.predict(idx[400:]))["kendall_tau"] - 0.02)
    one = create_predictor("stack", space, members=["ridge"]).fit(x, y)  # one member: nothing to weigh
    assert one.train_info["weights"] == {"ridge": 1.0} and one.train_info["cv_folds"] == 0
    few = create_predictor("stack", space).fit(x[:3], y[:3])  # too few to cross-validate: equal weights
    assert few.train_info["weights"] == {"gbt": 0.5, "ridge": 0.5}
    for bad, message in ((["gbt", "gbt"], "distinct kinds"), (["svm"], "distinct kinds"), ("gbt", "a list"),
                         ([], "a list")):
        with pytest.raises(InputError, match=f"members: got .*{message}"):
            create_predictor("stack", space, members=bad)
    with pytest.raises(InputError, match="folds: got 1"):
        create_predictor("stack", space, folds=1)


# ---- the CLI ---------------------------------------------------------------------------------------------------
def test_cli_predictor_fit(space, tmp_path):
    from nas.cli.main import cli

    data = tmp_path / "acc.jsonl"
    _write_dataset(data, space, 120, 60)
    out = tmp_path / "pred"
    runner = CliRunner()
    res = runner.invoke(cli, ["predictor", "fit", "--dataset", str(data), "--out", str(out), "--kind", "gbt",
                              "--seed", "1", "--test-fraction", "0.25", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output.strip().splitlines()[-1])
    for key in ("kendall_tau", "spearman", "rmse", "n_train", "n_test"):
        assert key in report
    assert report["n_train"] + report["n_test"] == 180 and report["kendall_tau"] > 0.3
    sel = report["qa_selection"]
    assert sel["cv_folds"] == 4 and sel["chosen"] == max(sel["kendall_tau"], key=sel["kendall_tau"].get)
    qa_kind = {"transfer": "qa-residual", "joint": "gbt"}[sel["chosen"]]
    assert report["models"]["fp"]["kind"] == "gbt" and report["models"]["qa"]["kind"] == qa_kind
    pred = load_predictor(out)
    assert pred.kind == "gbt" and pred.qa is not None and pred.qa.kind == qa_kind
    assert json.loads((out / MANIFEST).read_text())["metrics"]["n_test"] == report["n_test"]
    bad = runner.invoke(cli, ["predictor", "fit", "--dataset", str(data), "--out", str(tmp_path / "x"),
                              "--kind", "svm"])
    assert bad.exit_code == 2 and "kind: got 'svm', allowed: one of gbt, mlp, ridge, stack, auto" in bad.output
    assert not (tmp_path / "x").exists()
    garbage = tmp_path / "g.jsonl"
    garbage.write_text("not json\n")
    bad = runner.invoke(cli, ["predictor", "fit", "--dataset", str(garbage), "--out", str(tmp_path / "y")])
    assert bad.exit_code == 2 and "line 1 is not JSON" in bad.output
    assert "fit" in runner.invoke(cli, ["predictor", "--help"]).output


def test_quant_residual_lookup_matches_its_features(space, data):
    from predictors.quant_residual import QuantResidual, feature_names, quantization_features

    names = feature_names(space)
    coef = np.random.default_rng(0).normal(size=len(names))
    res = QuantResidual(space, coef)
    xq, xf = data["q_test"][0], data["fp_test"][0]
    np.testing.assert_allclose(res.predict(xq), quantization_features(space, xq) @ coef, atol=1e-9)
    assert (quantization_features(space, xf) == 0).all() and (res.predict(xf) == 0).all()  # float: no cost
    assert len(names) == quantization_features(space, xq[:1]).shape[1] and "weight_bits=4@0" in names
    assert QuantResidual(space).fit(xf, np.ones(len(xf))).alpha is None  # nothing quantized: nothing learned
    # noise alone is not taken for a cost (one-standard-error rule, "no correction" a candidate) ...
    rng = np.random.default_rng(1)
    noise_only = QuantResidual(space).fit(xq[:80], rng.normal(0, 0.5, 80))
    assert noise_only.alpha is None and (noise_only.coef == 0).all()
    # ... a real one is: 1.5 points per 4-bit weight block, under the same noise
    w4 = quantization_features(space, xq)[:, names.index("count weight_bits=4, keep=0.5")]
    cost = QuantResidual(space).fit(xq[:80], -1.5 * w4[:80] + rng.normal(0, 0.5, 80))
    assert cost.alpha is not None and np.corrcoef(cost.predict(xq[80:]), -w4[80:])[0, 1] > 0.8
    with pytest.raises(InputError, match="quantization residual coefficients"):
        QuantResidual(space, coef[:-1])


def test_soft_clip_keeps_the_order_past_the_labels_and_bounds_it():
    """Predictions past the trained-on range keep their order (a hard clip tied them: a budget's pick among
    them was arbitrary) and stay within a tenth of the range beyond it."""
    y = np.array([50.0, 60.0, 70.0, 80.0, 81.0, 85.0, 120.0, 30.0, 10.0])
    out = soft_clip(y, 60.0, 80.0)
    np.testing.assert_array_equal(out[1:4], y[1:4])  # inside: unchanged
    assert out[3] < out[4] < out[5] < out[6] <= 82.0 and out[8] < out[7] < out[0] < 60.0 and out[8] >= 58.0
    assert np.all(np.diff(soft_clip(np.linspace(0, 200, 2001), 60.0, 99.0)) >= 0)
    assert soft_clip(np.array([500.0]), 60.0, 99.5)[0] <= 100.0
