"""Labels where the search chooses (`search.label_rounds`).

A predictor is least right exactly where a search ends: the subnets it predicts best are, by selection, the ones
it over-predicts (on the quickstart, the best predicted subnets of each budget lay 2-7 points above their holdout
accuracy on average). So after the budget searches, each round measures the `label_picks` best predicted subnets
under every budget -- of the front and the budget searches' results, the entries a query answers from -- as the
predictor's labels were measured (`accuracy.label_images`), corrects the predictor with the residuals of every
subnet measured so far (`AccuracyPredictor.with_correction`: a Gaussian process that reaches a search's
neighbouring picks, not the rest of the space) and searches every budget again with it. The last round measures
its picks on the export's check images instead (CHECK_IMAGES: +-0.36 points, not +-1.4; the export reuses them),
corrects the predictor once more and searches no more -- and repeats that while the correction brings unchecked
subnets into a budget's best (`SETTLE_ROUNDS`; the export's own round, `nas.pipeline.export_round`, measures what
is still unmeasured among its candidates). Each label enters the correction with its binomial variance, so the
luckiest of near-equal picks is shrunk towards the others instead of taken at its word. The labels are also
appended to a copy of the accuracy labels, marked `chosen` (a refit trains on them, never holds them out). What each
round measured is kept: the picks' predicted against measured accuracy, before the correction.

The latency side has the same curse, and with `search.time_picks` the same rounds: the picks are timed whole and
the table corrected around them (`nas.pipeline.pick_timing`). Since a timed pick the table
under-predicted leaves its budget with its neighbours -- most of a budget search's best --, a budget left with
fewer than `label_picks` subnets that meet it is searched again even after the last round.
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nas.pipeline.pick_timing import PickTiming
from search_spaces.files import atomic_write_text

Found = list[tuple[list[Any], int]]  # per budget: its best entries (FrontEntry) and the evaluations spent
# +-0.36 points at 85 % (one sigma): what the chosen subnets' predictions end anchored to, so what bounds their
# error against the test split; 5,000 (+-0.5) left a budget 1.1 points under-predicted in one run of five
CHECK_IMAGES = 10000
# after the last round, up to this many more on the check images while its correction lifts unchecked subnets into
# a budget's best predicted (a check below its prediction lowers it, and the next best takes its place). One: the
# export's own round (`nas.pipeline.export_round`) checks what is still unchecked among its candidates, and each
# round on the check images costs ~10 s a subnet
SETTLE_ROUNDS = 1


class HoldoutCheck:
    """`check(config) -> holdout top-1 %` by the supernet on `n_images` holdout images after the first `skip`
    (CHECK_IMAGES, or half of what is left: the export measures the images from `end` on), recalibrated as the
    predictor's labels were; `check.measure(config, n, skip)` on images [skip, skip + n) (n None: all from skip
    on). `known`: checks made before, {config: accuracy}.

    Why `skip`: the labels' images (`accuracy.label_images`) chose the candidates -- the predictor learnt from
    them, and label rounds measure picks on them -- so a check on those images inherits the optimism of the
    choice; measured on fresh images, it does not (2 points over the verification images, on the quickstart)."""

    def __init__(self, ckpt: str, data: str, calib_batches: int, skip: int = 0,
                 known: dict[Any, float] | None = None) -> None:
        from nas.train import load_for_eval

        self.ckpt = ckpt
        self.net, self.data, _ = load_for_eval(ckpt, data)
        self.data_name = data
        self.calib_batches = calib_batches
        holdout = self.data.split_sizes()["holdout"]
        self.skip = skip if holdout - skip >= 4 else 0  # too few images after the labels': share theirs
        self.n_images = min(CHECK_IMAGES, (holdout - self.skip) // 2)
        self.end = self.skip + self.n_images
        self.done: dict[tuple[Any, int | None, int], float] = {
            (c, self.n_images, self.skip): a for c, a in (known or {}).items()}
        self.known = frozenset(known or {})  # the checks a (corrected) predictor has learnt

    def __call__(self, config: Any) -> float:
        return self.measure(config, self.n_images, self.skip)

    def measure(self, config: Any, n_images: int | None, skip: int = 0) -> float:
        from nas.train import evaluate

        key = (config, n_images, skip)
        if key not in self.done:  # budgets share candidates
            self.done[key] = round(evaluate(self.net, config, self.data, "holdout", calib_batches=self.calib_batches,
                                            max_images=n_images, skip_images=skip), 4)
        return self.done[key]

    def count(self, n_images: int | None, skip: int = 0) -> int:
        """How many images `measure(config, n_images, skip)` measures on."""
        rest = self.data.split_sizes()["holdout"] - skip
        return rest if n_images is None else min(n_images, rest)

    def checks(self) -> dict[Any, float]:
        """The checks made on the check images, {config: accuracy}."""
        return {c: a for (c, n, s), a in self.done.items() if (n, s) == (self.n_images, self.skip)}


@dataclass
class LabelRounds:
    """The labels (the accuracy stage's, then the chosen ones) and the corrected predictors, in `folder`."""

    folder: Path
    check: HoldoutCheck
    label_images: int | None  # what the accuracy labels were measured on (None: the whole holdout)
    base: str  # the predictor stage's predictor, which every round corrects
    seed: int
    progress: bool = False
    dataset: Path = field(init=False)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    labelled: dict[Any, float] = field(default_factory=dict)  # every chosen subnet measured: config -> accuracy
    recorded: set[str] = field(default_factory=set)  # the configs (sorted JSON) with a record in `dataset`
    images: dict[Any, int] = field(default_factory=dict)  # what each of them was measured on: config -> images

    def __post_init__(self) -> None:
        self.dataset = self.folder / "labels.jsonl"

    @classmethod
    def resume(cls, path: str | Path, folder: Path, check: HoldoutCheck, label_images: int | None, base: str,
               seed: int, labels: str, progress: bool = False) -> LabelRounds:
        """The rounds saved at `path` (`save`) and their labels file `labels`, carried on in `folder`: its labels
        file and corrected predictors go there."""
        from search_spaces import config_from_dict

        saved = json.loads(Path(path).read_text())
        rounds = cls(folder, check, label_images, base, seed, progress, rounds=saved["rounds"])
        rounds.start(labels)
        for lab in saved["labelled"]:
            c = config_from_dict(lab["config"])
            rounds.labelled[c], rounds.images[c] = float(lab["accuracy"]), int(lab["images"])
        return rounds

    def start(self, accuracy_dataset: str) -> None:
        shutil.copyfile(accuracy_dataset, self.dataset)
        self.recorded = {json.dumps(json.loads(line)["config"], sort_keys=True)
                         for line in self.dataset.read_text().splitlines() if line.strip()}

    def label(self, picks: list[tuple[str, Any]], final: bool = False) -> list[dict[str, Any]]:
        """Measure every `(budget label, FrontEntry)` pick -- as the labels were, or `final`ly on the export's
        check images (which the export then reuses, and which tell a pick to +-0.5 points, not +-1.4) -- and
        append the new ones' records; the round's rows {budget, subnet, predicted, holdout, images, new}. Nothing
        new to measure: an empty list (the rounds have converged)."""
        from tqdm.auto import tqdm

        from nas.accuracy_dataset import append_records, checkpoint_id

        n, skip = (self.check.n_images, self.check.skip) if final else (self.label_images, 0)
        supernet = checkpoint_id(self.check.ckpt)
        rows, records = [], []
        for budget, e in tqdm(picks, desc=f"label round {len(self.rounds) + 1}", disable=not self.progress or None,
                              dynamic_ncols=True):
            key = json.dumps(e.config.to_dict(), sort_keys=True)
            new = (e.config, n, skip) not in self.check.done
            rows.append({"budget": budget, "subnet": e.config.label(), "predicted": round(e.accuracy, 4),
                         "holdout": self.check.measure(e.config, n, skip), "images": [skip, skip + (n or 0)],
                         "new": new})
            self.labelled[e.config] = self.check.measure(e.config, n, skip)  # the last measured: the most images
            self.images[e.config] = self.check.count(n, skip)
            if key not in self.recorded:
                self.recorded.add(key)
                records.append({"config": e.config.to_dict(), "accuracy": self.labelled[e.config],
                                "quantized": e.config.is_quantized, "split": "holdout", "data": self.check.data_name,
                                "supernet": supernet, "max_images": n, "skip_images": skip,
                                "chosen": True})
        if not any(r["new"] for r in rows):
            return []
        append_records(self.dataset, records)
        errors = [r["predicted"] - r["holdout"] for r in rows]
        self.rounds.append({"round": len(self.rounds) + 1, "labelled": sum(r["new"] for r in rows),
                            "images": [skip, skip + (n or 0)],
                            "mean_error": round(sum(errors) / len(errors), 3),
                            "mean_abs_error": round(sum(abs(x) for x in errors) / len(errors), 3), "picks": rows})
        return rows

    def run(self, n_rounds: int, n_picks: int, budgets: list[Any], front: list[Any], found: Found, evaluator: Any,
            evaluator_for: Callable[[str, str | None], Any], search_budgets: Callable[[Any, list[int]], Found],
            timing: PickTiming | None = None) -> tuple[str, str | None, Any, Found]:
        """Up to `n_rounds` rounds (and `SETTLE_ROUNDS` more on the check images) over `budgets`, starting from
        the `front`'s entries and the budget searches' `found` ([(best entries, evaluations)] per budget, by the
        base predictor's `evaluator`). With `timing`, the picks are timed whole in every round too and the table
        corrected around them (`nas.pipeline.pick_timing`). `evaluator_for(predictor directory,
        table path)` is the predicted evaluator of a predictor and a table (None: the latency stage's),
        `search_budgets(evaluator, indices)` searches those of the budgets again with one. Returns the last
        predictor's directory (the base one when nothing was measured), the last corrected table's path (None:
        none), their evaluator and the budgets' entries as it predicts them."""
        directory, table = self.base, None
        for r in range(n_rounds + SETTLE_ROUNDS):
            final = r >= n_rounds - 1
            # what a query would answer from: the front and every budget search's best, as predicted now
            seen = repredicted(front, evaluator) + [e for best, _ in found for e in best]
            picks = [(b, e) for b in budgets for e in top_under(seen, b, n_picks)]
            labelled = self.label([(b.label(), e) for b, e in picks], final=final)
            timed = timing.time([(b.label(), e) for b, e in picks]) if timing else []
            if not labelled and not timed:
                break  # every pick measured already: the predictor and the table have seen what they would choose
            directory = self.correct() if labelled else directory
            table = timing.correct() if timed and timing else table
            evaluator = evaluator_for(directory, table)
            if not final:
                found = search_budgets(evaluator, list(range(len(budgets))))
                continue
            # the last measurements correct the figures only: no search past them -- but where the corrected table
            # puts a budget's best out of it (a timed pick the table under-predicted leaves with its neighbours,
            # which are most of a budget search's best), that budget is searched again, and what replaces them is
            # checked and timed in the next round
            found = [(sorted(repredicted(best, evaluator), key=lambda e: -e.accuracy), n) for best, n in found]
            short = [i for i, (b, (best, _)) in enumerate(zip(budgets, found))
                     if len(top_under(best, b, n_picks)) < n_picks]
            if timed and short:
                for i, again in zip(short, search_budgets(evaluator, short)):
                    found[i] = again
        return directory, table, evaluator, found

    def correct(self) -> str:
        """The base predictor corrected by the residuals of every subnet labelled so far, saved as
        `predictor-<round>`; its directory."""
        from predictors import load_predictor

        configs = list(self.labelled)
        fixed = load_predictor(self.base).with_correction(configs, [self.labelled[c] for c in configs],
                                                          seed=self.seed, images=[self.images[c] for c in configs])
        out = self.folder / f"predictor-{len(self.rounds)}"
        fixed.save(out)
        assert fixed.correction is not None
        self.rounds[-1]["correction"] = {k: fixed.correction.train_info.get(k) for k in ("scale", "length", "noise")}
        return str(out.resolve())

    def save(self) -> Path:
        path = self.folder / "label_rounds.json"
        atomic_write_text(path, json.dumps({"rounds": self.rounds, "checks": [
            {"config": c.to_dict(), "holdout": a} for c, a in self.check.checks().items()], "labelled": [
            {"config": c.to_dict(), "accuracy": a, "images": self.images[c]} for c, a in self.labelled.items()]},
            indent=1))
        return path


def known_checks(path: str | None) -> dict[Any, float]:
    """The checks on the export's check images a label-rounds file recorded, {config: accuracy} (none without)."""
    from search_spaces import config_from_dict

    if not path or not Path(path).is_file():
        return {}
    return {config_from_dict(c["config"]): float(c["holdout"]) for c in json.loads(Path(path).read_text())["checks"]}


def top_under(entries: list[Any], budget: Any, k: int) -> list[Any]:
    """The `k` most accurate (predicted) of `entries` under `budget`'s latency and size limits, one per config."""
    from nas.budgets import Budgets

    unique = list({e.config: e for e in entries}.values())
    ok = Budgets(budget.latency_ms, budget.size_mb).mask(
        [e.accuracy for e in unique], [e.latency_ms for e in unique], [e.size_bytes for e in unique])
    return sorted((e for e, keep in zip(unique, ok) if keep), key=lambda e: -e.accuracy)[:k]


def repredicted(entries: list[Any], evaluator: Any) -> list[Any]:
    """`entries` with their accuracy (and lower bound) and latency from `evaluator`'s predictor and table: one
    predictor's and one table's figures on a front, whichever found them."""
    from nas.front import with_lower_bounds

    if not entries:
        return entries
    m = evaluator.evaluate([e.config for e in entries])
    fresh = [replace(e, accuracy=float(a), latency_ms=float(ms), accuracy_lower=None)
             for e, a, ms in zip(entries, m.accuracy, m.latency_ms)]
    return with_lower_bounds(fresh, evaluator.predictor)
