"""The stages of `hwnas run`, in order, each a function of the experiment and the results it depends on.

supernet -> latency -> accuracy -> predictor -> search -> store -> export -> baselines -> report
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import platform
import shutil
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from nas.experiment import PROTOCOL_FIELDS, SEARCH_FIELDS, TRAIN_FIELDS, Budget, Experiment
from nas.pipeline.cache import StageResult, StageRunner
from nas.pipeline.label_rounds import CHECK_IMAGES, SETTLE_ROUNDS, HoldoutCheck, known_checks, top_under
from nas.train_config import TrainConfig
from search_spaces.files import atomic_write_json, sha256_file
from search_spaces.settings import values


def _child_main(target: str, kwargs: dict[str, Any], result: str) -> None:
    """Child side of `in_child`: run `module:function(**kwargs)`, write its JSON result or its error."""
    import importlib

    from search_spaces import HwnasError, InputError

    module, name = target.split(":")
    try:
        out = {"ok": getattr(importlib.import_module(module), name)(**kwargs)}
    except HwnasError as e:
        out = {"error": str(e), "input": isinstance(e, InputError)}
    atomic_write_json(result, out)


def in_child(target: str, folder: Path, **kwargs: Any) -> dict[str, Any]:
    """Run a heavy stage body in a fresh process: its memory (autograd, data caches, ONNX Runtime sessions) goes
    back to the OS before the next stage starts Ray, so the run's peak is the largest stage's, not the sum."""
    import multiprocessing

    from search_spaces import HwnasError, InputError

    result = folder / "child-result.json"
    result.unlink(missing_ok=True)
    child = multiprocessing.get_context("spawn").Process(target=_child_main, args=(target, kwargs, str(result)))
    child.start()
    child.join()
    out = json.loads(result.read_text()) if result.is_file() else {"error": f"exit code {child.exitcode}"}
    if "error" in out:
        raise (InputError if out.get("input") else HwnasError)(f"{target.split(':')[1]}: {out['error']}")
    return out["ok"]


def supernet_stage(run: StageRunner, exp: Experiment, progress: bool, ray_address: str | None = None) -> StageResult:
    s = exp.supernet
    if s.checkpoint is not None:
        settings: dict[str, Any] = {"checkpoint": str(Path(s.checkpoint).resolve()), "sha256": sha256_file(s.checkpoint)}

        def use(folder: Path) -> dict[str, Any]:
            from nas.checkpoint import load_supernet

            load_supernet(s.checkpoint, space=exp.space)  # fails clearly for another space
            return {"checkpoint": settings["checkpoint"], "trained_here": False}

        return run.run("supernet", settings, [], use)
    if s.import_ofa is not None:
        settings = {"import_ofa": str(Path(s.import_ofa).resolve()), "space": exp.space,
                    "sha256": sha256_file(s.import_ofa) if Path(s.import_ofa).is_file() else "missing"}

        def convert(folder: Path) -> dict[str, Any]:
            from nas.ofa_import import ImportConfig, import_ofa

            out = folder / "supernet.pt"
            import_ofa(ImportConfig(checkpoint=s.import_ofa, space=exp.space, out=out))
            return {"checkpoint": str(out.resolve()), "trained_here": False, "imported_from": settings["import_ofa"]}

        return run.run("supernet", settings, [], convert)
    cfg = s.train_config(space=exp.space, data=exp.data, seed=exp.seed, data_seed=exp.seed)
    settings = {"space": exp.space, "data": exp.data, "seed": exp.seed, **values(cfg, *TRAIN_FIELDS)}
    if cfg.lr == TrainConfig.lr:  # the default keeps the key it had when the section spelt it None
        settings["lr"] = None
    if s.workers > 1 or s.use_gpu or s.amp is not None:  # only then: keeps the cache keys of existing runs
        settings.update(values(s, "workers", "use_gpu", "amp"))

    def train(folder: Path) -> dict[str, Any]:
        return in_child("nas.pipeline.stages:train_supernet_stage", folder, exp_dict=exp.model_dump(),
                        ckpt=str(folder / "supernet.pt"), progress=progress, ray_address=ray_address)

    return run.run("supernet", settings, [], train)


REFERENCE_IMAGES = 1000


def train_supernet_stage(exp_dict: dict[str, Any], ckpt: str, progress: bool,
                         ray_address: str | None = None) -> dict[str, Any]:
    """Train (or resume) the experiment's supernet and evaluate its reference subnets (runs in a child)."""
    from nas.device import Runtime
    from nas.train import evaluate_references, load_for_eval
    from nas.train_run import run_training

    exp = Experiment.model_validate(exp_dict)
    s = exp.supernet
    cfg = s.train_config(space=exp.space, data=exp.data, seed=exp.seed, data_seed=exp.seed)
    # the run's cluster trains only a data-parallel supernet; one worker trains here
    run = s.train_run(out=ckpt, resume=Path(ckpt).exists(), ray_address=ray_address if s.workers > 1 else None)
    res = run_training(cfg, run, progress=progress)
    runtime = Runtime.from_options(s.device, s.amp)
    net, data, _ = load_for_eval(ckpt, runtime=runtime, data_workers=s.data_workers)
    return {"checkpoint": str(Path(ckpt).resolve()), "trained_here": True, "epochs": res.epochs_done,
            "train_seconds": res.seconds,
            # a summary, on at most REFERENCE_IMAGES test images (+-1.1 points at 85 %): the whole split of a
            # generated set would cost the run minutes
            "test_accuracy": evaluate_references(net, data, split="test", runtime=runtime,
                                                 max_images=REFERENCE_IMAGES,
                                                 calib_batches=exp.accuracy.calib_batches)}


def build_table_stage(exp_dict: dict[str, Any], out: str, ray_address: str | None, progress: bool) -> dict[str, Any]:
    """Build (or resume) the latency table, then validate it on held-out subnets (runs in a child)."""
    from latency_tables import build_table, validate_table
    from latency_tables.validate import calibration_summary

    exp = Experiment.model_validate(exp_dict)
    lat = exp.latency
    table = build_table(lat.table_config(space=exp.space, out=out, ray_address=ray_address,
                                         quantize=exp.search.quantize, progress=progress))
    validation = None
    if lat.validate_n:
        v = validate_table(table, n=lat.validate_n, seed=exp.seed + 1, ray_address=ray_address, progress=progress)
        validation = {k: v[k] for k in ("n", "within_5pct", "within_10pct", "mape", "rmse_ms") if k in v}
        validation["uncalibrated"] = v.get("uncalibrated")
        validation["calibration"] = v.get("calibration")  # chosen method, applied or not, candidates' CV MAPE
        validation["by_policy"] = {p: {k: s[k] for k in ("n", "within_5pct", "within_10pct", "mape")}
                                   for p, s in v.get("by_policy", {}).items()}
    return {"table": str(Path(out).resolve()), "device_tag": table.device_tag, "built_here": True,
            "keys": len(table.entries), "validation": validation, "calibration": calibration_summary(table)}


def _non_default_protocol(lat: Any) -> dict[str, Any]:
    """The section's protocol settings that differ from `Protocol`'s defaults (a default one keeps the stage key it
    had before they were settable)."""
    from latency_tables.protocol import Protocol

    default = Protocol()
    return {f: getattr(lat, f) for f in PROTOCOL_FIELDS if getattr(lat, f) != getattr(default, f)}


def latency_stage(run: StageRunner, exp: Experiment, progress: bool, ray_address: str | None) -> StageResult:
    lat = exp.latency
    if lat.table is not None:
        settings: dict[str, Any] = {"table": str(Path(lat.table).resolve()), "sha256": sha256_file(lat.table)}

        def reuse(folder: Path) -> dict[str, Any]:
            from latency_tables import LatencyTable
            from latency_tables.validate import calibration_summary

            t = LatencyTable.load(lat.table, space=exp.space)
            return {"table": settings["table"], "device_tag": t.device_tag, "built_here": False,
                    "calibration": calibration_summary(t)}

        return run.run("latency", settings, [], reuse)
    # a table belongs to a machine: the host and the backend's fingerprint are part of its key
    from latency_tables import BACKENDS, get_backend

    if run.dry_run and not BACKENDS.get(lat.backend).available()[0]:
        fingerprint: Any = "unavailable on this machine"  # a dry run on a machine without the device
    else:
        fingerprint = get_backend(lat.backend, threads=lat.threads, batch_size=lat.batch_size,
                                  precision=lat.precision).fingerprint()
    settings = {"space": exp.space, "backend": lat.backend, "threads": lat.threads, "batch_size": lat.batch_size,
                "resolutions": lat.resolutions, "calibrate": lat.calibrate, "validate_n": lat.validate_n,
                "device_tag": lat.device_tag, "host": platform.node(), "fingerprint": fingerprint,
                "load_reference": lat.load_reference,
                "quantize": exp.search.quantize}
    if lat.precision != "fp32":  # fp32 keeps the key it had before precisions existed
        settings["precision"] = lat.precision
    settings.update(_non_default_protocol(lat))

    def build(folder: Path) -> dict[str, Any]:
        return in_child("nas.pipeline.stages:build_table_stage", folder, exp_dict=exp.model_dump(),
                        out=str(folder / "table.json"), ray_address=ray_address, progress=progress)

    return run.run("latency", settings, [], build)


def accuracy_stage(run: StageRunner, exp: Experiment, supernet: StageResult, progress: bool,
                   ray_address: str | None) -> StageResult:
    a = exp.accuracy
    # labels only where the search looks: the latency table's resolutions
    settings = {"data": exp.data, "n": a.n, "quantized_fraction": a.quantized_fraction, "seed": exp.seed,
                "resolutions": exp.latency.resolutions, "calib_batches": a.calib_batches,
                "label_images": a.label_images,
                **({"uniform_fraction": a.uniform_fraction} if a.uniform_fraction else {})}

    def collect_(folder: Path) -> dict[str, Any]:
        from nas.accuracy_dataset import collect

        out = folder / "accuracy.jsonl"
        cfg = a.collect_config(supernet=supernet.outputs["checkpoint"], data_name=exp.data, out=out, seed=exp.seed,
                               ray_address=ray_address if a.workers > 1 else None, progress=progress,
                               resolutions=exp.latency.resolutions)
        if not exp.search.quantize:
            cfg = dataclasses.replace(cfg, quantized_fraction=0.0)
        info = collect(cfg)
        return {"dataset": str(out.resolve()), "n": a.n, "mean_accuracy": info.get("mean_accuracy")}

    return run.run("accuracy", settings, [supernet], collect_)


def predictor_stage(run: StageRunner, exp: Experiment, accuracy: StageResult) -> StageResult:
    settings = {"kind": exp.predictor.kind, "seed": exp.seed}

    def fit(folder: Path) -> dict[str, Any]:
        from predictors import FitConfig, fit_predictor

        out = folder / "predictor"
        if out.exists():  # an interrupted earlier attempt: fitting is cheap, start again
            shutil.rmtree(out)
        _, report = fit_predictor(FitConfig(dataset=accuracy.outputs["dataset"], space=exp.space, out=out,
                                            seed=exp.seed, **values(exp.predictor, "kind")))
        return {"predictor": str(out.resolve()), "report": report}

    return run.run("predictor", settings, [accuracy], fit)


def search_stage(run: StageRunner, exp: Experiment, accuracy: StageResult, predictor: StageResult,
                 latency: StageResult, supernet: StageResult, ray_address: str | None,
                 progress: bool = False) -> StageResult:
    """The front's search, then a search of its own per latency / size budget; with `label_rounds`, rounds of
    labelling the budgets' best predicted subnets, correcting the predictor with them and searching the budgets
    again (`nas.pipeline.label_rounds`). The front's entries then carry the last predictor's figures."""
    s = exp.search
    settings = {**values(s, *SEARCH_FIELDS), "seed": exp.seed}
    if s.pruning:  # only without it: keeps the cache keys of runs from before it was settable
        del settings["pruning"]
    budgeted = budgeted_searches(exp)
    if budgeted:  # only then: keeps the cache keys of runs without them
        from nas.search.refine import REFINE_VERSION

        # `refine`: the budget searches' algorithm (`refine_for_budget`), so a run made with an earlier one reruns
        settings.update(budget_trials=s.budget_trials, budgets=[b.model_dump() for _, b in budgeted],
                        refine=REFINE_VERSION)
        if s.label_rounds:
            # rounds_format: what label_rounds.json holds (2: every label, which the export's round carries on)
            settings.update(label_rounds=s.label_rounds, label_picks=s.label_picks, check_images=CHECK_IMAGES,
                            settle_rounds=SETTLE_ROUNDS, rounds_format=2)
            if s.time_picks:  # only then: keeps the cache keys of runs from before it existed
                settings.update(time_picks=True)

    def search(folder: Path) -> dict[str, Any]:
        from nas.search.api import SearchConfig, run_search

        cfg = SearchConfig(**values(s, *SEARCH_FIELDS), space=exp.space, out=str(folder),
                           predictor=predictor.outputs["predictor"], table=latency.outputs["table"],
                           ray_address=ray_address, seed=exp.seed,
                           study=f"{exp.name}-{run.key_of('search', settings, [predictor, latency])}",
                           backend=exp.latency.backend if s.verify_top else None,
                           supernet=supernet.outputs["checkpoint"] if s.verify_top else None,
                           data=exp.data if s.verify_top else None)
        result = run_search(cfg)
        entries, per_budget, extra = list(result.front), [], {}
        if budgeted:
            from nas.budgets import Budgets
            from nas.front import with_lower_bounds
            from nas.search.refine import refine_for_budget

            pred_dir = predictor.outputs["predictor"]
            space_r, ev = searched_evaluator(exp, pred_dir, latency.outputs["table"])
            configs = [t.config for t in result.trials]

            def budget_searches(ev: Any, which: list[int]) -> list[tuple[list[Any], int]]:
                m = ev.evaluate(configs)  # the front's trials as this predictor sees them
                start = [(c, m.row(i)) for i, c in enumerate(configs)]
                return [refine_for_budget(space_r, ev, Budgets(budgeted[i][1].latency_ms, budgeted[i][1].size_mb),
                                          start, s.budget_trials, seed=exp.seed + 101 + i, quantize=s.quantize)
                        for i in which]

            found = budget_searches(ev, list(range(len(budgeted))))
            if s.label_rounds:
                from nas.pipeline.label_rounds import LabelRounds, repredicted
                from nas.pipeline.pick_timing import PickTiming

                check = HoldoutCheck(supernet.outputs["checkpoint"], exp.data, exp.accuracy.calib_batches,
                                     skip=exp.accuracy.label_images or 0)
                rounds = LabelRounds(folder, check, exp.accuracy.label_images, base=pred_dir, seed=exp.seed,
                                     progress=progress)
                rounds.start(accuracy.outputs["dataset"])
                timing = PickTiming(folder, latency.outputs["table"], exp.seed, ray_address,
                                    progress) if s.time_picks else None
                pred_dir, table_path, ev, found = rounds.run(
                    s.label_rounds, s.label_picks, [b for _, b in budgeted], entries, found, ev,
                    evaluator_for=lambda d, t: searched_evaluator(exp, d, t or latency.outputs["table"])[1],
                    search_budgets=budget_searches, timing=timing)
                entries = repredicted(entries, ev)
                extra = {"predictor": pred_dir, "labels": str(rounds.dataset.resolve()),
                         "label_rounds": str(rounds.save().resolve())}
                if timing is not None:
                    extra.update(table=table_path, pick_timing=str(timing.save().resolve()))
            front_entries = list(entries)
            for (slug, b), (best, n_new) in zip(budgeted, found):
                entries += with_lower_bounds(best, ev.predictor)
                per_budget.append({"budget": b.label(), "trials": n_new,
                                   "best_predicted": _best_under(best, b),
                                   "front_best_predicted": _best_under(front_entries, b)})
        entries = merged_front(entries)
        front = folder / "front.entries.json"
        atomic_write_json(front, [e.to_dict() for e in entries])
        return {"out": str(folder.resolve()), "front": str(front.resolve()), "n_trials": result.n_trials,
                "n_pareto": len(entries), "hypervolume": result.hypervolume,
                "trials_per_second": result.trials_per_second, "study": result.study, "storage": result.storage,
                "device_tag": result.device_tag, "workers": result.summary["workers"], "budgeted": per_budget,
                **extra}

    return run.run("search", settings, [predictor, latency, supernet], search)


def budgeted_searches(exp: Experiment) -> list[tuple[str, Budget]]:
    """The budgets that get a search of their own (`search.budget_trials`): those with a latency or size limit,
    where the sampler is one the budget local search may follow (`SamplerKind.generational`)."""
    from nas.search.sampler_kinds import SAMPLERS

    if not exp.search.budget_trials or not SAMPLERS.get(exp.search.sampler).generational:
        return []
    return [(budget_slug(b, i), b) for i, b in enumerate(exp.budgets)
            if b.latency_ms is not None or b.size_mb is not None]


def searched_predictor(predictor: StageResult, search: StageResult) -> str:
    """The predictor the search ended with: corrected by its label rounds, else the predictor stage's."""
    return search.outputs.get("predictor") or predictor.outputs["predictor"]


def searched_table(latency: StageResult, search: StageResult) -> str:
    """The table the search ended with: corrected around its timed picks, else the latency stage's."""
    return search.outputs.get("table") or latency.outputs["table"]


def searched_evaluator(exp: Experiment, predictor: str, table_path: str) -> tuple[Any, Any]:
    """The space as the search looked at it (the table's resolutions; keep 1.0 without pruning) and the predicted
    evaluator of `predictor` and the table at `table_path`: what the budget searches and the baselines search
    with."""
    from latency_tables import LatencyTable
    from nas.search.api import table_resolutions
    from nas.search.evaluators import PredictedEvaluator
    from predictors import load_predictor
    from search_spaces import get_space

    table = LatencyTable.load(table_path)
    space = get_space(exp.space)
    space_r = get_space(exp.space, resolutions=table_resolutions(space, table),
                        keep=None if exp.search.pruning else (1.0,))
    return space_r, PredictedEvaluator(space, load_predictor(predictor), table)


def baseline_evaluations(exp: Experiment) -> int:
    """The evaluations a baseline gets per budget: what hwnas spent on one budget (the front's trials, which
    serve every budget, plus that budget's own search)."""
    return exp.search.trials + (exp.search.budget_trials if budgeted_searches(exp) else 0)


def _best_under(entries: list[Any], b: Budget) -> float | None:
    """The best predicted accuracy of `entries` under `b`'s latency and size limits."""
    best = top_under(entries, b, 1)
    return best[0].accuracy if best else None


def merged_front(entries: list[Any]) -> list[Any]:
    """The entries of the union non-dominated in accuracy, latency and size (all three, whatever the search's
    objectives: a budget may limit any), one per config. A budget search's best subnet either survives or is
    dominated by one that meets the same budget with at least its accuracy, so no budget's answer is lost."""
    import numpy as np

    from nas.search.pareto import pareto_mask

    unique = list({e.config: e for e in entries}.values())
    if not unique:
        return []
    values = np.array([[e.accuracy, e.latency_ms, e.size_bytes] for e in unique], dtype=float)
    return [e for e, keep in zip(unique, pareto_mask(values, ("accuracy", "latency", "size"))) if keep]


def store_stage(run: StageRunner, exp: Experiment, search: StageResult, latency: StageResult,
                predictor: StageResult) -> StageResult:
    settings = {"store": exp.store_url}

    def store(folder: Path) -> dict[str, Any]:
        from latency_tables import LatencyTable
        from nas.front import FrontEntry
        from nas.store import ResultsStore

        table = LatencyTable.load(latency.outputs["table"])
        entries = [FrontEntry.from_dict(d) for d in json.loads(Path(search.outputs["front"]).read_text())]
        with contextlib.closing(ResultsStore(exp.store_url)) as st:
            front_id = st.add_front(entries, space=exp.space, device_tag=table.device_tag,
                                    device_fingerprint=table.fingerprint, dataset=exp.data,
                                    predictor=searched_predictor(predictor, search),
                                    table_fingerprint=table.fingerprint,
                                    source={"experiment": exp.name, "study": search.outputs["study"],
                                            "search_stage": search.key})
        return {"store": exp.store_url, "front_id": front_id, "device_tag": table.device_tag,
                "entries": len(entries)}

    return run.run("store", settings, [search], store)


def budget_slug(b: Budget, i: int) -> str:
    raw = b.name or f"budget{i}"
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in raw)


# per budget, this many of the best predicted subnets that meet it (a min_accuracy budget: at the predictor's
# confidence) are measured on CHECK_IMAGES holdout images after the labels' (`HoldoutCheck`), and the most accurate
# (`verified_choice`) that meets min_accuracy as measured is exported. Why: the predictor ranks subnets to within
# a few points (240 labels of the quickstart: RMSE 3.4), the holdout to within half a point. The export then
# measures the rest of the holdout -- images that chose nothing -- as the estimate a user is given, and the test
# split. After label rounds, twice as many are timed first and these are the best that still meet the budget
# (`nas.pipeline.export_round`).
VERIFY_CANDIDATES = 3


def verified_choice(q: Any, b: Budget, check: Callable[[Any], float],
                    learnt: Collection[Any] = ()) -> tuple[Any, list[dict[str, Any]]]:
    """Of the query's ranked candidates that meet `b.min_accuracy` on the holdout check, the most accurate (ties:
    the better predicted), or None; and every check made. Most accurate by the prediction where the predictor
    learnt the candidate's check (`learnt` configs: the label rounds' last checks), which is that check shrunk
    towards its neighbours' -- the best of a few raw checks of near-equal subnets is the luckiest --, else by the
    check."""
    checked = []
    for cand in q.ranked:
        e = cand.entry
        checked.append({"entry_id": cand.entry_id, "config": e.config.to_dict(), "predicted": e.accuracy,
                        "lower_bound": e.accuracy_lower, "holdout": check(e.config),
                        "ranked_by": "predicted" if e.config in learnt else "holdout"})
    ok = [i for i, c in enumerate(checked) if b.min_accuracy is None or c["holdout"] >= b.min_accuracy]
    if not ok:
        return None, checked
    best = max(ok, key=lambda i: (checked[i][checked[i]["ranked_by"]], -i))
    return q.ranked[best], checked


def export_stage(run: StageRunner, exp: Experiment, store: StageResult, supernet: StageResult,
                 latency: StageResult, predictor: StageResult, search: StageResult) -> StageResult:
    """Per budget: query the store for the best predicted subnets, export the best of them on a holdout check,
    float and quantized, and measure both (the rest of the holdout, the test split, the backend)."""
    settings = {"budgets": [b.model_dump() for b in exp.budgets], "export": exp.export.model_dump(),
                "verify_candidates": VERIFY_CANDIDATES, "check_images": CHECK_IMAGES,
                "check_after": exp.accuracy.label_images or 0,
                "calib_batches": exp.accuracy.calib_batches}
    rounds = bool(search.outputs.get("label_rounds"))
    if rounds:  # only then: keeps the cache keys of runs without label rounds
        settings["export_round"] = 1

    def export(folder: Path) -> dict[str, Any]:
        from nas.budgets import budget_values
        from nas.export import ExportConfig, export_subnet
        from nas.lookup import query
        from nas.query_config import QueryConfig
        from nas.store import ResultsStore

        out: dict[str, Any] = {}
        # this run's front only: a store that holds earlier runs' fronts -- of other predictors, or of this stage
        # run before (same predictor path) -- would answer from them too
        searched_with = searched_predictor(predictor, search)
        with contextlib.closing(ResultsStore(exp.store_url, create=False)) as st:  # one store for every budget
            found = [query(QueryConfig(store=st, space=exp.space, device=store.outputs["device_tag"],
                                       **budget_values(b),
                                       dataset=exp.data, front_id=store.outputs["front_id"],
                                       n_ranked=2 * VERIFY_CANDIDATES if rounds else VERIFY_CANDIDATES))
                     for b in exp.budgets]
        # recalibrated as the labels were, so a holdout check and the predictor's labels measure the same subnet
        calib = exp.accuracy.calib_batches
        check = HoldoutCheck(supernet.outputs["checkpoint"], exp.data, calib, skip=exp.accuracy.label_images or 0,
                             known=known_checks(search.outputs.get("label_rounds")))
        table, learnt, extra, considered = searched_table(latency, search), check.known, {}, {}
        if rounds:
            from nas.pipeline.export_round import export_round

            measured = export_round(exp, search.outputs, predictor.outputs["predictor"], latency.outputs["table"],
                                    folder, check, found, VERIFY_CANDIDATES)
            found, searched_with, table = measured.found, measured.predictor, measured.table
            learnt = frozenset(check.checks())  # the corrected predictor learnt every check
            extra = {"round": {"predictor": searched_with, "table": table, "timed": measured.timed,
                               "labelled": measured.labelled}}
            considered = dict(zip((budget_slug(b, i) for i, b in enumerate(exp.budgets)), measured.considered))
        for i, (b, q) in enumerate(zip(exp.budgets, found)):
            slug = budget_slug(b, i)
            row: dict[str, Any] = {"label": b.label(), "found": q.found, "message": q.message}
            if slug in considered:
                row["considered"] = considered[slug]
            chosen, checked = verified_choice(q, b, check, learnt) if q.found else (None, [])
            if checked:
                row["holdout_checked"] = checked
            if chosen is None:
                if q.found:
                    row.update(found=False, message=f"none of the {len(checked)} best predicted subnets meeting "
                               f"the budgets reaches {b.min_accuracy:g} % on the holdout check")
                row["closest"] = [c.to_dict() for c in (q.closest or q.ranked)]
                out[slug] = row
                continue
            row["entry"] = {**chosen.entry.to_dict(), "entry_id": chosen.entry_id}
            variants = [("float", False)] if exp.export.float else []
            variants += [("quantized", True)] if exp.export.quantized and chosen.entry.config.is_quantized else []
            for name, quantize in variants:
                rep = export_subnet(ExportConfig(
                    supernet=supernet.outputs["checkpoint"], config=chosen.entry.config,
                    out=folder / slug / f"model-{name}.onnx", quantize=quantize, data=exp.data,
                    backend=exp.latency.backend, table=table, predictor=searched_with,
                    entry=chosen.entry, query_provenance=chosen.front.to_dict(), seed=exp.seed, calib_batches=calib,
                    verify_n=exp.export.verify_n, holdout_from=check.end))
                row[name] = rep.summary()
            out[slug] = row
        return {"budgets": out, **extra}

    return run.run("export", settings, [store, supernet, latency, predictor], export)


def baselines_stage(run: StageRunner, exp: Experiment, predictor: StageResult, latency: StageResult,
                    search: StageResult) -> StageResult:
    """What the search is compared with, on the same predicted evaluator and the same number of evaluations:
    random sampling of the searched space, and Once-for-All's evolutionary search as OFA runs it
    (`nas.search.evolution`: a feasible first population, over-budget candidates re-drawn for free, the search's
    trials split over the latency budgets), each with `baseline_evaluations` per budget."""
    n = baseline_evaluations(exp)
    settings = {"trials": n, "seed": exp.seed, "budgets": [b.model_dump() for b in exp.budgets],
                "quantize": exp.search.quantize, "baseline": "ofa-evolution-v3",
                **({"pruning": False} if not exp.search.pruning else {})}

    def baselines(folder: Path) -> dict[str, Any]:
        import numpy as np

        from nas.budgets import Budgets
        from nas.search.evolution import evolution_search

        space_r, ev = searched_evaluator(exp, searched_predictor(predictor, search), searched_table(latency, search))
        rnd_cfgs = space_r.sample_many(n, seed=exp.seed + 7, quantize=exp.search.quantize)
        rnd = ev.evaluate(rnd_cfgs)

        def best(acc: np.ndarray, lat: np.ndarray, size: np.ndarray, ok: np.ndarray, b: Budget) -> float | None:
            m = ok & Budgets.of(b).mask(acc, lat, size)
            return float(acc[m].max()) if m.any() else None

        out: dict[str, Any] = {}
        lat_budgets = sorted({b.latency_ms for b in exp.budgets if b.latency_ms is not None})
        # OFA's evolution splits its evaluations over the budgets: `n` for each
        evo = evolution_search(space_r, ev, n * len(lat_budgets), lat_budgets, seed=exp.seed,
                               quantize=exp.search.quantize) if lat_budgets else None
        for i, b in enumerate(exp.budgets):
            row = {"random": best(rnd.accuracy, rnd.latency_ms, rnd.size_bytes, rnd.supported, b)}
            if evo is not None and b.latency_ms is not None:
                _, m = evo
                row["ofa_evolution"] = best(m.accuracy, m.latency_ms, m.size_bytes, m.supported, b)
            out[budget_slug(b, i)] = row
        return {"evaluations": n, "budgets": out}

    return run.run("baselines", settings, [predictor, latency, search], baselines)
