"""The end of `hwnas run`: a summary table (printed), a Pareto plot (PNG) and a Markdown report, written
atomically into the workdir, plus the primary exported model copied to `model.onnx` / `model.card.json`."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from nas.experiment import Experiment
from nas.front import CONFIDENCE
from nas.pipeline.cache import StageResult
from search_spaces import config_from_dict
from search_spaces.files import atomic_path, atomic_write_text


def _f(v: Any, fmt: str = "{:.2f}") -> str:
    return "-" if v is None else fmt.format(v)


def deployed_variant(r: dict[str, Any]) -> dict[str, Any]:
    """The export a user of this budget deploys: the quantized one for a quantized subnet, else the float one."""
    return r.get("quantized") or r.get("float") or {}


def summary_rows(exp: Experiment, export: StageResult, baselines: StageResult | None) -> list[dict[str, str]]:
    """One row per budget: predicted (and its lower bound) against measured on the deployed export, test split."""
    rows = []
    for slug, r in export.outputs["budgets"].items():
        base = (baselines.outputs["budgets"].get(slug, {}) if baselines else {})
        if not r["found"]:
            rows.append({"budget": r["label"], "subnet": "nothing meets the budget"})
            continue
        e = r["entry"]
        c = e["config"]
        q, fl, dep = r.get("quantized") or {}, r.get("float") or {}, deployed_variant(r)
        bits = c["weight_bits"]
        d_acc = None if dep.get("accuracy") is None else dep["accuracy"] - e["accuracy"]
        d_ver = (None if dep.get("accuracy") is None or dep.get("holdout_accuracy") is None
                 else dep["accuracy"] - dep["holdout_accuracy"])

        def vs_pred(ms: float | None) -> float | None:
            return None if ms is None else 100 * (ms / e["latency_ms"] - 1)

        drift = dep.get("reference_drift")
        rows.append({
            "budget": r["label"],
            "subnet": config_from_dict(c).label(),
            "pred acc %": _f(e["accuracy"]),
            f">= at {CONFIDENCE:.0%}": _f(e.get("accuracy_lower")),
            "verified %": _f(dep.get("holdout_accuracy")),
            "test % (int / fp)": f"{_f(q.get('accuracy'))} / {_f(fl.get('accuracy'))}",
            "test - verified": _f(d_ver, "{:+.2f}"),
            "test - pred": _f(d_acc, "{:+.2f}"),
            "pred ms": _f(e["latency_ms"], "{:.3f}"),
            "ms (int / fp)": f"{_f(q.get('latency_ms'), '{:.3f}')} / {_f(fl.get('latency_ms'), '{:.3f}')}",
            "ms vs pred": _f(vs_pred(dep.get("latency_ms")), "{:+.1f} %"),
            "at table speed": _f(vs_pred(dep.get("latency_at_table_speed_ms")), "{:+.1f} %"),
            "host drift": _f(None if drift is None else 100 * drift, "{:+.1f} %"),
            "size KB": _f(e["size_bytes"] / 1e3, "{:.0f}"),
            "random %": _f(base.get("random")),
            "OFA-evo %": _f(base.get("ofa_evolution")),
        })
    return rows


def _checks_section(budgets: dict[str, Any]) -> list[str]:
    """Per budget: the candidates checked on the holdout, predicted against measured, the exported one marked."""
    rows = []
    for r in budgets.values():
        chosen = (r.get("entry") or {}).get("entry_id")
        for c in r.get("holdout_checked", []):
            rows.append({"budget": r["label"], "entry": str(c["entry_id"]), "pred %": _f(c["predicted"]),
                         f">= at {CONFIDENCE:.0%}": _f(c.get("lower_bound")), "holdout check %": _f(c["holdout"]),
                         "ranked by": c.get("ranked_by", "holdout"),
                         "exported": "yes" if c["entry_id"] == chosen else ""})
    if not rows:
        return []
    return ["Holdout checks (holdout images after the labels'; the images after them verify the export):", "",
            format_table(rows, markdown=True), ""]


def _export_round_section(budgets: dict[str, Any]) -> list[str]:
    """Per budget: the candidates the export's round measured, as the search predicted them and as the table and
    predictor corrected with the measurements predict them (what the export then claims)."""
    rows = [{"budget": r["label"], "entry": str(c["entry_id"]), "subnet": c["subnet"],
             "searched %": _f(c["searched_accuracy"]), "now %": _f(c["accuracy"]),
             "searched ms": _f(c["searched_latency_ms"], "{:.3f}"), "now ms": _f(c["latency_ms"], "{:.3f}"),
             "meets the budget": "yes" if c["meets"] else "no"}
            for r in budgets.values() for c in r.get("considered", [])]
    if not rows:
        return []
    return ["Export round: each budget's best predicted candidates, timed whole (again where a label round timed "
            "them) and checked where no round checked them, then predicted by the table and predictor corrected with "
            "those measurements; the export chooses among the best that still meet the budget:", "",
            format_table(rows, markdown=True), ""]


def format_table(rows: list[dict[str, str]], markdown: bool = False) -> str:
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    cells = [[r.get(c, "") for c in cols] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    fmt = "  ".join("{:<%d}" % w for w in widths)
    return "\n".join([fmt.format(*cols), fmt.format(*("-" * w for w in widths))] + [fmt.format(*row) for row in cells])


def plot_front(exp: Experiment, search: StageResult, export: StageResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    front = json.loads(Path(search.outputs["front"]).read_text())
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    if front:
        sc = ax.scatter([e["latency_ms"] for e in front], [e["accuracy"] for e in front],
                        c=[e["size_bytes"] / 1e6 for e in front], cmap="viridis", s=14, label="Pareto front")
        fig.colorbar(sc, ax=ax, label="size (MB, weights at their bits)")
    # each chosen subnet at its predicted point, an arrow to where its export measured (test split, the backend)
    styles = {"float": ("o", "tab:blue"), "quantized": ("*", "tab:red")}
    labelled: set[str] = set()
    for r in export.outputs["budgets"].values():
        if not r["found"]:
            continue
        for variant, (marker, color) in styles.items():
            rep = r.get(variant)
            if not rep or rep.get("predicted_latency_ms") is None or rep.get("predicted_accuracy") is None:
                continue
            p = (rep["predicted_latency_ms"], rep["predicted_accuracy"])
            ax.scatter(*p, marker=marker, s=110, facecolor="none", edgecolor=color, zorder=5,
                       label=None if f"p{variant}" in labelled else f"{variant} export, predicted")
            labelled.add(f"p{variant}")
            if rep.get("latency_ms") is not None:
                m = (rep["latency_ms"], rep["accuracy"])
                ax.annotate("", xy=m, xytext=p, arrowprops={"arrowstyle": "->", "color": color, "lw": 1}, zorder=6)
                ax.scatter(*m, marker=marker, s=110, color=color, edgecolor="k", zorder=7,
                           label=None if f"m{variant}" in labelled else f"{variant} export, measured")
                labelled.add(f"m{variant}")
        e = r["entry"]
        ax.annotate(r["label"], (e["latency_ms"], e["accuracy"]), textcoords="offset points", xytext=(6, 6),
                    fontsize=8)
    for b in exp.budgets:
        if b.latency_ms is not None:
            ax.axvline(b.latency_ms, color="gray", ls=":", lw=1)
    ax.set_xlabel(f"latency, ms on {exp.latency.backend} (predicted; measured on the exports)")
    ax.set_ylabel("top-1 % (predicted; measured on test)")
    if labelled:
        ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"{exp.name}: {exp.space} on {exp.data}, {search.outputs['n_trials']} trials")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def copy_primary_model(exp: Experiment, export: StageResult) -> dict[str, str] | None:
    """The first budget that found a subnet: its quantized export if there is one, else the float one."""
    for r in export.outputs["budgets"].values():
        if not r["found"]:
            continue
        rep = r.get("quantized") or r.get("float")
        if not rep:
            continue
        wd = exp.workdir_path
        for src, dst in ((rep["onnx_path"], wd / "model.onnx"), (rep["card_path"], wd / "model.card.json")):
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)
        return {"model": str(wd / "model.onnx"), "card": str(wd / "model.card.json"), "budget": r["label"]}
    return None


def _label_rounds_section(rounds: list[dict[str, Any]]) -> list[str]:
    """Per label round: how far the budgets' best predicted subnets lay from their labels before the correction
    (the search's optimism where it chose), and the correction's length scale and the noise it fitted beyond the
    labels' own (binomial)."""
    rows = [{"round": str(r["round"]), "labelled": str(r["labelled"]),
             "predicted - label (mean)": f"{r['mean_error']:+.2f}", "|predicted - label|": f"{r['mean_abs_error']:.2f}",
             "correction length": _f((r.get("correction") or {}).get("length")),
             "extra noise": _f((r.get("correction") or {}).get("noise"))} for r in rounds]
    return ["Label rounds: each budget's best predicted subnets measured as the labels were (the last round: on the "
            "export's check images), the predictor corrected by the residuals of all measured so far (a Gaussian "
            "process: it reaches neighbouring subnets only; each label with its binomial variance) and the budgets "
            "searched again (not after the last; rounds after it check the subnets its correction brought into a "
            "budget's best). Before each correction:", "",
            format_table(rows, markdown=True), ""]


def _pick_timing_section(rounds: list[dict[str, Any]]) -> list[str]:
    """Per round: how far the budgets' picks ran from the table's prediction before its correction (the search's
    optimism about latency where it chose)."""
    rows = [{"round": str(r["round"]), "timed": str(r["timed"]),
             "measured vs pred (mean)": f"{r['mean_error_pct']:+.1f} %",
             "|measured vs pred|": f"{r['mean_abs_error_pct']:.1f} %",
             "correction length": _f((r.get("correction") or {}).get("length"))} for r in rounds]
    return ["Pick timing: in each label round the budgets' picks were also exported whole and timed on the table's "
            "backend (at the table's speed), and the table corrected around every subnet timed so far (a Gaussian "
            "process on the log ratio with a mean: near a timed subnet it moves to the timing, elsewhere by the "
            "timed picks' mean, which is selection's). Before each correction:", "",
            format_table(rows, markdown=True), ""]


def write_report(exp: Experiment, results: dict[str, StageResult], rows: list[dict[str, str]],
                 primary: dict[str, str] | None) -> Path:
    lines = [f"# hwnas run: {exp.name}", "",
             f"Space `{exp.space}`, data `{exp.data}`, backend `{exp.latency.backend}`, seed {exp.seed}.", "",
             "## Chosen subnets per budget", "",
             "`pred`: predicted by the predictor (learnt from the first holdout images) and the latency table "
             "(corrected around the subnets timed whole in the label rounds and the export's round, see "
             "below). "
             "Per budget, the best predicted subnets are checked on holdout images after the labels' and the "
             "most accurate is exported (by the prediction where the label rounds taught the predictor that "
             "check, which shrinks a lucky check towards its neighbours', else by the check); `verified %` is "
             "its exported ONNX model on the rest of the holdout "
             "(images that chose nothing: the estimate a user is given), `test %` on the test split, which "
             "nothing was fitted or chosen on (int = quantized per the subnet's bits, fp = the same architecture "
             "in float). `test - verified`, `test - pred` and `ms vs pred` compare the export a user deploys "
             "(int for a quantized subnet). `ms vs pred` is the plain median on the machine as it is now; "
             "`at table speed` the same export timed next to the table's reference model and scaled to the "
             "reference's latency during the build (what the prediction claims); `host drift` how much slower (+) "
             "the reference runs now than then. "
             "`random` and `OFA-evo`: best predicted accuracy under the same budget found by random sampling and by "
             "Once-for-All's evolutionary search with the same number of evaluations.", "",
             format_table(rows, markdown=True), "",
             "![Pareto front](pareto.png)", ""]
    pairs = [(rep["holdout_accuracy"], rep["accuracy"]) for r in results["export"].outputs["budgets"].values()
             for rep in (r.get("float"), r.get("quantized")) if rep and rep.get("holdout_accuracy") is not None]
    if pairs:
        gap = [t - h for h, t in pairs]
        lines += [f"Test minus holdout accuracy of the {len(pairs)} exported models: mean {sum(gap) / len(gap):+.2f}, "
                  f"from {min(gap):+.2f} to {max(gap):+.2f} points (a systematic gap would show here; the "
                  "predictor learnt from the holdout split).", ""]
    lines += _checks_section(results["export"].outputs["budgets"])
    lines += _export_round_section(results["export"].outputs["budgets"])
    if primary:
        lines += [f"Deployed model: `{primary['model']}` (card `{primary['card']}`), budget {primary['budget']}.", ""]
    sn = results["supernet"].outputs
    if sn.get("test_accuracy"):
        lines += ["## Supernet (test accuracy, BN recalibrated per subnet)", "",
                  format_table([{k: f"{v:.2f}" for k, v in sn["test_accuracy"].items()}], markdown=True), ""]
    val = results["latency"].outputs.get("validation")
    if val:
        un = val.get("uncalibrated") or {}
        lines += ["## Latency table fidelity (held-out subnets measured end to end)", "",
                  format_table([{"": "calibrated", "n": str(val["n"]), "within 5%": _f(val["within_5pct"]),
                                 "within 10%": _f(val["within_10pct"]), "MAPE": _f(val["mape"], "{:.3f}")},
                                {"": "uncalibrated", "n": str(un.get("n", val["n"])),
                                 "within 5%": _f(un.get("within_5pct")), "within 10%": _f(un.get("within_10pct")),
                                 "MAPE": _f(un.get("mape"), "{:.3f}")}], markdown=True), ""]
    cal = results["latency"].outputs.get("calibration")
    if cal and cal.get("cv_mape"):
        errs = ", ".join(f"{k} {100 * v:.1f} %" for k, v in cal["cv_mape"].items())
        verdict = f"**{cal['method']}** applied" if cal.get("applied") else "none applied: the plain block sum is kept"
        lines += [f"Calibration chosen by leave-one-out error on {cal.get('n', '?')} whole subnets ({errs}): "
                  f"{verdict}.", ""]
    pr = results["predictor"].outputs.get("report") or {}
    if pr:
        keys = ("kind", "kendall_tau", "spearman", "rmse", "n_train", "n_test")
        row = {k: str(round(pr[k], 3)) if isinstance(pr.get(k), float) else str(pr.get(k)) for k in keys}
        row["quantized subnets"] = str((pr.get("models", {}).get("qa") or {}).get("kind"))
        margin = pr.get("margin_90") or {}
        row["margin at 90 % (fp / quantized)"] = f"{_f(margin.get('fp'))} / {_f(margin.get('qa'))}"
        lines += ["## Accuracy predictor (held-out subnets, holdout-split labels)", "",
                  format_table([row], markdown=True), ""]
        rel = pr.get("label_reliability")
        if rel:
            lines += [f"Label reliability (split-half, Spearman-Brown) **{rel['reliability']:.3f}** over {rel['n']} "
                      f"subnets: a perfect predictor would reach Kendall tau ~{rel['tau_ceiling']:.3f} against these "
                      "labels.", ""]
        if margin:
            lines += [f"The lower bound (`>= at {CONFIDENCE:.0%}`) is the prediction minus the split-conformal margin "
                      "of the held-out residuals; a `min_accuracy` budget must hold on it, and then on the holdout "
                      "split as measured, before a subnet is exported.", ""]
        for what, sel in (("kind", pr.get("kind_selection")), ("quantization-aware model", pr.get("qa_selection"))):
            if sel and sel.get("kendall_tau"):
                taus = ", ".join(f"{k} {v:.3f}" for k, v in sel["kendall_tau"].items())
                lines += [f"{what.capitalize()} chosen by {sel['cv_folds']}-fold cross-validated Kendall tau: "
                          f"**{sel['chosen']}** ({taus}).", ""]
    se = results["search"].outputs
    workers = se.get("workers") or {}
    where = f" ({workers['requested']} workers asked for: {workers['in_process']})" if workers.get("in_process") else ""
    lines += ["## Search", "", f"{se['n_trials']} trials, hypervolume {se['hypervolume']:.4f}, "
              f"{se['trials_per_second']:.0f} trials/s{where}; study `{se['study']}`; {se['n_pareto']} subnets on "
              "the stored front.", ""]
    if se.get("budgeted"):
        lines += ["Budget searches (their best feasible subnets join the front), best predicted accuracy:", "",
                  format_table([{"budget": b["budget"], "trials": str(b["trials"]),
                                 "budget search %": _f(b["best_predicted"]),
                                 "front's best under it %": _f(b["front_best_predicted"])}
                                for b in se["budgeted"]], markdown=True), ""]
    if se.get("label_rounds"):
        lines += _label_rounds_section(json.loads(Path(se["label_rounds"]).read_text())["rounds"])
    if se.get("pick_timing"):
        lines += _pick_timing_section(json.loads(Path(se["pick_timing"]).read_text())["rounds"])
    lines += ["## Stages", "", format_table([{"stage": r.name, "cached": "yes" if r.cached else "no",
                                              "seconds": f"{r.seconds:.1f}", "folder": str(r.folder)}
                                             for r in results.values()], markdown=True), ""]
    path = exp.workdir_path / "report.md"
    atomic_write_text(path, "\n".join(lines))
    return path
