"""Shared fixtures. One local Ray instance per test session (started lazily, stopped by this process only)."""
from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see search_spaces/__init__.py
os.environ.setdefault("TQDM_DISABLE", "1")
# folder-index caches of the trees tests generate go to a throwaway folder, not the user's ~/.cache
os.environ.setdefault("HWNAS_CACHE", tempfile.mkdtemp(prefix="hwnas-test-cache-"))


# `make test-fast` (-m "not slow and not ray and not gpu") leaves out what the marks below name, without anyone
# having to remember to mark a test: every test that uses the session's Ray instance (`ray`), and (`slow`) the
# files and fixtures that train a supernet or measure a real latency table, plus the tests that took > 2.5 s in
# `pytest --durations=0` on this machine (the full suite, `make test`, runs them all)
SLOW_FILES = {"test_train.py", "test_devices.py", "test_export.py", "test_folder_stream.py"}
SLOW_FIXTURES = {"table_path"}  # a latency table measured with onnxruntime (test_latency_tables.py)
SLOW_TESTS = {
    "test_readme_python_block_runs", "test_a_plugin_sampler_is_picked_up_by_the_yaml_the_help_and_the_contract_suite",
    "test_auto_kind_is_chosen_by_cross_validation", "test_stack_weights_follow_cross_validation",
    "test_quantization_aware_model_is_chosen_by_cross_validation", "test_fit_predictor_from_dataset",
    "test_qa_transfer_starts_as_fp_and_improves", "test_supernet_extract_onnx_agree",
    "test_other_samplers_run_with_sqlite", "test_search_restricted_to_the_table_resolutions",
    "test_resume_continues_and_evaluates_nothing_twice", "test_measured_latency_is_scaled_like_its_table",
    "test_budgeted_search_uses_its_budget", "test_ofa_variant_dry_runs_here", "test_cluster_experiment_dry_runs_here",
    "test_run_rejects_bad_file_with_exit_2", "test_entry_point_backend_is_found_by_name_in_a_fresh_process",
    "test_a_broken_plugin_is_listed_as_unavailable_not_a_crash", "test_builtin_shapes_data_set", "test_mnist_5k",
    "test_table_with_impossible_numbers_is_refused", "test_collect_resumes_after_a_torn_line",
    "test_yaml_refuses_a_truncated_table_duplicate_keys_and_alias_bombs", "test_fuzz_search_numbers",
    "test_training_stops_on_a_non_finite_loss",
}


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if "ray_local" in fixtures:
            item.add_marker(pytest.mark.ray)
        if item.path.name == "test_ofa_import.py":
            item.add_marker(pytest.mark.ofa)
        if item.path.name in SLOW_FILES or fixtures & SLOW_FIXTURES or \
                getattr(item, "originalname", item.name) in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray instance for the whole session; `ray.shutdown()` ends the processes this driver started."""
    import ray

    started = False
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
                 resources={"device:test-cpu": 1})
        started = True
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def tiny_space():
    from search_spaces import get_space

    return get_space("mbv3-tiny")
