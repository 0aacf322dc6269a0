"""nas: the engines that tie the packages together (data, supernet training, search, results store, query,
export, CLI), and the front door a script uses:

    import nas
    nas.train_supernet(nas.TrainConfig(...), out)    nas.import_ofa(nas.ImportConfig(...))
    nas.build_table(nas.TableConfig(...))            nas.collect_labels(nas.CollectConfig(...))
    nas.fit_predictor(nas.FitConfig(...))            nas.run_search(nas.SearchConfig(...))
    nas.query(nas.QueryConfig(...))                  nas.export_subnet(nas.ExportConfig(...))
    nas.run_experiment(nas.load_experiment(path))

(`train`, `search` and `export` are submodules of this package, so the verbs carry their object's name.)

The names are imported lazily, so `import nas` (and `hwnas --help`) stays cheap (no torch, no Optuna)."""
from __future__ import annotations

from search_spaces.lazy import lazy_exports

# name -> module that defines it (the verbs and their configs: `nas.api`)
_LAZY = {
    **{name: "nas.api" for name in (
        "CollectConfig", "ExportConfig", "FitConfig", "ImportConfig", "QueryConfig", "SearchConfig", "TableConfig",
        "TrainConfig", "add_to_store", "build_table", "collect_labels", "export_subnet", "fit_predictor",
        "import_ofa", "load_accuracy_dataset", "query", "run_search", "train_supernet")},
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
