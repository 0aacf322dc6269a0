"""The export's own round: what a budget would export, measured before it is chosen.

The label rounds can end with a search (a budget the corrected table empties is searched again after the last
round), and a query answers a budget with its best predicted subnets whatever measured them: so the candidates
the export checks need not be subnets a round timed or checked -- and a budget's best predicted unmeasured subnet
is, by selection, one its figures flatter (on the quickstart, the two exports that missed by 1.4-1.7 points and 12 %
were such subnets; experiments/results/quickstart.md). So before choosing, the export stage runs one more round
on its own candidates, with no search after it: each budget's `2 x VERIFY_CANDIDATES` best predicted subnets are
timed whole (again where a round timed them: one timing of a 4-bit subnet missed the next by 10-20 %, and the
correction learns a subnet from all its timings) and the table is corrected around every timing (`PickTiming`),
the budgets are applied again on the corrected latency, the `VERIFY_CANDIDATES` best that still meet them are
checked on the check images where no round checked them and the predictor is corrected with every check
(`LabelRounds`), and the export chooses among them by the corrected figures, which are also what it predicts. What
a prediction of the exported subnet can then miss by is the measurements' own noise: a re-timing's, and the check
images' against the test split's.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nas.experiment import Budget, Experiment
from nas.pipeline.label_rounds import HoldoutCheck, LabelRounds, repredicted
from nas.pipeline.pick_timing import PickTiming


@dataclass
class ExportRound:
    """The corrected predictor's directory and table's path the export predicts with, the budgets' queries with
    their candidates re-predicted and re-filtered by them, and what the round measured."""

    predictor: str
    table: str
    found: list[Any]  # QueryResult per budget
    considered: list[list[dict[str, Any]]]  # per budget: each candidate queried, as searched and as now predicted
    timed: list[dict[str, Any]]  # PickTiming rows of the candidates, each timed here
    labelled: list[dict[str, Any]]  # LabelRounds rows of the subnets checked here


def export_round(exp: Experiment, search_outputs: dict[str, Any], base_predictor: str, base_table: str,
                 folder: Path, check: HoldoutCheck, found: list[Any], keep: int) -> ExportRound:
    """Time the candidates of every budget's query in `found` (QueryResult, best predicted first), check those not
    checked by the search's rounds and re-predict them with the corrected table and predictor; each budget keeps its
    `keep` best that meet it then. Without label rounds (or pick timing) in the search, that half is left out."""
    from nas.pipeline.stages import searched_evaluator

    budgets = exp.budgets
    table = search_outputs.get("table") or base_table
    predictor = search_outputs.get("predictor") or base_predictor
    picks = [(b.label(), c.entry) for b, q in zip(budgets, found) for c in q.ranked]
    timed: list[dict[str, Any]] = []
    if search_outputs.get("pick_timing"):
        timing = PickTiming.resume(search_outputs["pick_timing"], folder, base_table, exp.seed)
        timed = timing.time(picks, again=True)
        if timed:
            table = timing.correct()
            timing.save()
    # every candidate as the corrected table predicts it; the `keep` best still meeting their budget go on
    evaluator = searched_evaluator(exp, predictor, table)[1]
    kept, considered = _refiltered(found, budgets, evaluator, keep)
    labelled: list[dict[str, Any]] = []
    if search_outputs.get("label_rounds"):
        rounds = LabelRounds.resume(search_outputs["label_rounds"], folder, check, exp.accuracy.label_images,
                                    base=base_predictor, seed=exp.seed, labels=search_outputs["labels"])
        labelled = [r for r in rounds.label([(b.label(), c.entry) for b, q in zip(budgets, kept) for c in q.ranked],
                                            final=True) if r["new"]]
        if labelled:
            predictor = rounds.correct()
            rounds.save()
            evaluator = searched_evaluator(exp, predictor, table)[1]
            considered = _refiltered(found, budgets, evaluator, keep)[1]
            # of the checked ones only: one the correction lifted into a budget's best would be chosen on a
            # prediction that has not learnt its check
            kept = _refiltered(kept, budgets, evaluator, keep)[0]
    return ExportRound(predictor, table, kept, considered, timed, labelled)


def _refiltered(found: list[Any], budgets: list[Budget], evaluator: Any,
                keep: int) -> tuple[list[Any], list[list[dict[str, Any]]]]:
    """Each query's candidates with `evaluator`'s figures (accuracy, lower bound, latency), those meeting its
    budget best predicted first, at most `keep` (a query none of whose candidates still meets it: not found);
    and per budget, every candidate's figures before and after."""
    from nas.budgets import Budgets

    out, rows = [], []
    for b, q in zip(budgets, found):
        fresh = repredicted([c.entry for c in q.ranked], evaluator)
        ok = Budgets.of(b).mask([e.accuracy_for_budget for e in fresh], [e.latency_ms for e in fresh],
                                [e.size_bytes for e in fresh])
        rows.append([{"entry_id": c.entry_id, "subnet": e.config.label(), "searched_accuracy": c.entry.accuracy,
                      "searched_latency_ms": c.entry.latency_ms, "accuracy": e.accuracy,
                      "accuracy_lower": e.accuracy_lower, "latency_ms": e.latency_ms, "meets": bool(m)}
                     for c, e, m in zip(q.ranked, fresh, ok)])
        if not q.found:
            out.append(q)
            continue
        cands = [replace(c, entry=e) for c, e in zip(q.ranked, fresh)]
        ranked = sorted((c for c, m in zip(cands, ok) if m), key=lambda c: -c.entry.accuracy)[:keep]
        if ranked:
            out.append(replace(q, ranked=ranked, best=ranked[0]))
        else:
            out.append(replace(q, found=False, ranked=[], best=None, closest=cands,
                               message=f"none of the {len(cands)} best predicted subnets meeting the budgets meets "
                                       f"them once timed and checked"))
    return out, rows
