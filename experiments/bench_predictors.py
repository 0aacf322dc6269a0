"""Benchmark the accuracy predictors on held-out subnets and print markdown tables.

    .venv/bin/python -m experiments.bench_predictors --dataset runs/tiny-digits/acc-halves.jsonl   # measured
    .venv/bin/python -m experiments.bench_predictors --synthetic                            # synthetic target

1. Kendall tau and RMSE of each fp predictor kind at 100 / 300 / 1,000 float training samples.
2. The quantization-aware predictor: transferred from the fp `mlp` vs trained from scratch, at 50 / 100 / 200
   quantized samples (scratch also at 4x those, to see what transfer saves); and, with `stack` among the kinds, the
   two models `predictor fit --kind stack` chooses between by cross-validation (`predictors.quant_fit`): the fp stack
   plus a fitted quantization cost, and a stack with bit features on the float plus the quantized samples.
3. Inference time of 100,000 configs from the `to_indices` matrix (best of 3).
4. With a dataset whose records carry `accuracy_halves`: how noisy the labels are -- the split-half agreement and
   the Kendall tau a perfect predictor would reach against them (`predictors.label_reliability`), next to each
   predictor's tau as a fraction of that ceiling.

With a dataset, held-out subnets are whole architectures (`AccuracyDataset.split`); sizes larger than the training
pool are reported as missing. The synthetic target is `predictors.synthetic_accuracy` (noise 0.15 points on
training labels, none on the test labels).
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np

from predictors import (
    AccuracyPredictor, QuantAwareMLPPredictor, ResidualTransferPredictor, create_predictor, label_reliability,
    load_accuracy_dataset, rank_metrics, synthetic_accuracy,
)
from predictors.qa import replay_weights
from search_spaces import get_space


def _pools(args: argparse.Namespace) -> tuple[Any, dict[str, tuple[np.ndarray, np.ndarray]], str,
                                              dict[str, dict[str, float]]]:
    """(space, pools, source line, label reliability of the held-out pools -- empty without halves)."""
    reliability: dict[str, dict[str, float]] = {}
    if args.dataset:
        ds = load_accuracy_dataset(args.dataset)
        sp = get_space(ds.space)
        train, test = ds.split(args.test_fraction, args.seed)
        idx, y, q = ds.indices(), ds.accuracy, ds.quantized
        rng = np.random.default_rng(args.seed)
        pools = {}
        for name, rows, quant in (("fp_train", train, False), ("fp_test", test, False),
                                  ("q_train", train, True), ("q_test", test, True)):
            r = rows[q[rows] == quant]
            r = r[rng.permutation(len(r))] if name.endswith("train") else r
            pools[name] = (idx[r], y[r])
            if name.endswith("test"):
                reliability[name] = label_reliability(ds.halves[r])
        src = (f"dataset {args.dataset} ({len(ds)} records, {int(q.sum())} quantized; data {ds.sources.get('data')}); "
               f"held out {len(test)} records of whole architectures (test fraction {args.test_fraction}, "
               f"seed {args.seed})")
        return sp, pools, src, reliability
    sp = get_space(args.space)
    pools = {}
    for name, n, seed, quant in (("fp_train", max(args.sizes), 101, False), ("fp_test", args.n_test, 102, False),
                                 ("q_train", 4 * max(args.q_sizes), 103, True), ("q_test", args.n_test, 104, True)):
        ix = sp.to_indices(sp.sample_many(n, seed + 1000 * args.seed, quantize=quant))
        y = synthetic_accuracy(sp, ix, seed=args.seed, noise=0.0 if name.endswith("test") else 0.15)
        pools[name] = (ix, y)
    return sp, pools, f"synthetic target on {sp.name} (predictors.synthetic_accuracy, seed {args.seed})", {}


def _score(model: Any, pool: tuple[np.ndarray, np.ndarray]) -> dict[str, float]:
    return rank_metrics(pool[1], model.predict(pool[0]))


def _fmt(m: dict[str, float] | None) -> str:
    return "n/a" if m is None else f"{m['kendall_tau']:.3f} / {m['rmse']:.3f}"


def _time_100k(model: Any, idx: np.ndarray) -> float:
    big = np.tile(idx, (int(np.ceil(100_000 / len(idx))), 1))[:100_000]
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        model.predict(big)
        best = min(best, time.perf_counter() - t)
    return best


def _print_reliability(reliability: dict[str, dict[str, float]], last: dict[str, dict[str, float]]) -> None:
    """The labels' own noise: what tau a perfect predictor could reach on the held-out float subnets."""
    rel = reliability.get("fp_test")
    if not rel or rel["n"] < 3:
        return
    print(f"Label noise ({rel['n']} held-out float subnets with `accuracy_halves`): the two halves of the holdout "
          f"split rank them with Kendall tau {rel['split_half_tau']:.3f} (Pearson {rel['split_half_pearson']:.3f}); "
          f"full-split reliability {rel['reliability']:.3f}, so a perfect predictor of the noise-free accuracy "
          f"would reach tau ~{rel['tau_ceiling']:.3f} against these labels.\n")
    print("| kind | tau (largest n) | tau / ceiling |")
    print("|---|---|---|")
    for kind, m in last.items():
        print(f"| {kind} | {m['kendall_tau']:.3f} | {m['kendall_tau'] / rel['tau_ceiling']:.2f} |")
    q = reliability.get("q_test")
    if q and q["n"] >= 3:
        print(f"\nHeld-out quantized subnets ({q['n']}): split-half tau {q['split_half_tau']:.3f}, "
              f"tau ceiling ~{q['tau_ceiling']:.3f}.")
    print()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", help="JSON-lines accuracy dataset (hwnas predictor dataset); else synthetic")
    ap.add_argument("--synthetic", action="store_true", help="use the synthetic target (the default without --dataset)")
    ap.add_argument("--space", default="mbv3-tiny", help="space of the synthetic target")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--n-test", type=int, default=1000, help="held-out subnets per pool (synthetic)")
    ap.add_argument("--sizes", default="100,300,1000")
    ap.add_argument("--q-sizes", default="50,100,200")
    ap.add_argument("--kinds", default="mlp,gbt,ridge,stack")
    args = ap.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.q_sizes = [int(s) for s in args.q_sizes.split(",")]
    if args.synthetic:
        args.dataset = None
    sp, pools, source, reliability = _pools(args)
    print(f"# Accuracy predictors -- {source}\n")
    print(f"held out: {len(pools['fp_test'][1])} float, {len(pools['q_test'][1])} quantized subnets; "
          f"training pools: {len(pools['fp_train'][1])} float, {len(pools['q_train'][1])} quantized\n")

    # 1. fp predictors vs training-set size
    kinds = args.kinds.split(",")
    pool = len(pools["fp_train"][1])
    if max(args.sizes) > pool:  # a real dataset smaller than the largest size: also train on all of it
        args.sizes = args.sizes + [pool]
    print("## Full-precision predictors (Kendall tau / RMSE in accuracy points, on held-out float subnets)\n")
    print("| kind | " + " | ".join(f"n={n}" for n in args.sizes) + " | fit s (last) |")
    print("|---|" + "---|" * (len(args.sizes) + 1))
    fitted: dict[str, Any] = {}
    last: dict[str, dict[str, float]] = {}
    const = rank_metrics(pools["fp_test"][1], np.full(len(pools["fp_test"][1]), pools["fp_train"][1].mean()))
    for kind in kinds:
        cells, fit_s = [], None
        for n in args.sizes:
            if n > len(pools["fp_train"][1]):
                cells.append("n/a")
                continue
            x, y = pools["fp_train"][0][:n], pools["fp_train"][1][:n]
            t = time.perf_counter()
            model = create_predictor(kind, sp, seed=args.seed).fit(x, y)
            fit_s = time.perf_counter() - t
            last[kind] = _score(model, pools["fp_test"])
            cells.append(_fmt(last[kind]))
            fitted[kind] = model
        print(f"| {kind} | " + " | ".join(cells) + (f" | {fit_s:.1f} |" if fit_s is not None else " | |"))
        sys.stdout.flush()
    print(f"| constant (train mean) | {_fmt(const)} (every n) | | |\n")
    _print_reliability(reliability, last)

    # 2. quantization-aware: transfer vs scratch
    fp = fitted.get("mlp")
    if fp is not None and len(pools["q_test"][1]) >= 2:
        n_fp = fp.train_info["n_train"]
        print(f"## Quantization-aware predictor: transferred from the fp mlp ({n_fp} float samples) vs from scratch "
              "(Kendall tau / RMSE on held-out quantized subnets)\n")
        before = _score(fp, pools["q_test"])
        print(f"fp mlp alone on quantized subnets (bits ignored; = either transfer before fitting): {_fmt(before)}\n")
        stack = fitted.get("stack")  # what `predictor fit --kind stack` chooses between (predictors.quant_fit)
        extra = " stack: transfer (residual) | stack: joint, with bits, float + quantized samples |" if stack else ""
        print("| quantized samples | transfer: residual (default) | transfer: APQ fine-tune + fp replay | scratch "
              "| scratch at 4x samples |" + extra)
        print("|---|---|---|---|---|" + ("---|---|" if stack else ""))
        fx, fy = pools["fp_train"][0][:n_fp], pools["fp_train"][1][:n_fp]
        for n in args.q_sizes:
            row = []
            for how, m in (("residual", n), ("finetune", n), ("scratch", n), ("scratch", 4 * n),
                           ("stack-transfer", n), ("stack-joint", n)):
                if m > len(pools["q_train"][1]) or (how.startswith("stack") and stack is None):
                    row.append(None)
                    continue
                x, y = pools["q_train"][0][:m], pools["q_train"][1][:m]
                if how == "scratch":
                    qa = create_predictor("mlp-qa", sp, seed=args.seed).fit(x, y)
                elif how == "stack-transfer":
                    qa = ResidualTransferPredictor.from_fp(stack).fit(x, y)
                elif how == "stack-joint":
                    qa = create_predictor("stack", sp, quant=True, seed=args.seed).fit(
                        np.concatenate([x, fx]), np.concatenate([y, fy]))
                else:  # what `predictor fit` passes: the quantized samples, then the float ones as replay
                    qa = QuantAwareMLPPredictor.from_fp(fp, transfer=how).fit(
                        np.concatenate([x, fx]), np.concatenate([y, fy]), sample_weight=replay_weights(m, n_fp))
                row.append(_score(qa, pools["q_test"]))
            print(f"| {n} | {_fmt(row[0])} | {_fmt(row[1])} | {_fmt(row[2])} | {_fmt(row[3])} ({4 * n}) |"
                  + (f" {_fmt(row[4])} | {_fmt(row[5])} |" if stack else ""))
            sys.stdout.flush()
        print()

    # 3. inference time
    print("## Inference: 100,000 configs from the to_indices matrix (best of 3, this machine)\n")
    print("| model | seconds |")
    print("|---|---|")
    q_idx = pools["q_test"][0] if len(pools["q_test"][0]) else pools["fp_test"][0]
    for kind, model in fitted.items():
        print(f"| {kind} (fp) | {_time_100k(model, q_idx):.3f} |")
    if fp is not None and len(pools["q_train"][1]) >= 2:
        qa = QuantAwareMLPPredictor.from_fp(fp).fit(*pools["q_train"])
        print(f"| mlp-qa | {_time_100k(qa, q_idx):.3f} |")
        mixed = np.concatenate([pools["fp_test"][0], q_idx])
        print(f"| AccuracyPredictor (fp + qa, half float / half quantized) | "
              f"{_time_100k(AccuracyPredictor(fp, qa), mixed):.3f} |")
    print()


if __name__ == "__main__":
    main()
