"""nas: the engines that tie the packages together (data, supernet training, search, results store, query,
export, CLI), and the front door a script uses:

    import nas
    nas.train_supernet(nas.TrainConfig(...), out)    nas.import_ofa(nas.ImportConfig(...))
    nas.run_training(nas.TrainConfig(...), nas.TrainRun(out=..., workers=4, device="cuda"))
    nas.build_table(nas.TableConfig(...))            nas.collect_labels(nas.CollectConfig(...))
    nas.fit_predictor(nas.FitConfig(...))            nas.run_search(nas.SearchConfig(...))
    nas.query(nas.QueryConfig(...))                  nas.export_subnet(nas.ExportConfig(...))
    nas.run_experiment(nas.load_experiment(path))

(`train`, `search` and `export` are submodules of this package, so the verbs carry their object's name.)

The names are imported lazily, so `import nas` (and `hwnas --help`) stays cheap (no torch, no Optuna)."""
from __future__ import annotations

from search_spaces.lazy import lazy_exports

# name -> module that defines it: a config never imports its verb's heavy dependencies (torch, Optuna, onnx)
_LAZY = {
    "CollectConfig": "nas.collect_config", "ExportConfig": "nas.export_config", "FitConfig": "predictors.fit_config",
    "ImportConfig": "nas.import_config", "QueryConfig": "nas.query_config", "SearchConfig": "nas.search.config",
    "TableConfig": "latency_tables.table_config", "TrainConfig": "nas.train_config", "TrainRun": "nas.train_config",
    "build_table": "latency_tables.build", "collect_labels": "nas.api", "export_subnet": "nas.export",
    "fit_predictor": "predictors.bundle", "import_ofa": "nas.ofa_import", "load_accuracy_dataset": "predictors.dataset",
    "query": "nas.lookup", "run_training": "nas.train_run", "train_supernet": "nas.train",
    **{name: "nas.search.api" for name in ("add_to_store", "run_search")},
    "QueryResult": "nas.lookup",
    "ResultsStore": "nas.store",
    "ExportReport": "nas.export",
    "SearchResult": "nas.search.api",
    "run_experiment": "nas.pipeline.run",
    "load_experiment": "nas.experiment",
    "Experiment": "nas.experiment",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
