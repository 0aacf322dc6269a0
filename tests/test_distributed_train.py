"""Data-parallel supernet training on Ray Train (2 CPU workers, gloo) against the one-process path."""
from __future__ import annotations

import pytest

from nas.train import TrainConfig, evaluate, load_for_eval, train_supernet
from search_spaces import InputError, get_space

# no augmentation: the two runs then differ only in what data parallelism changes (BN batch statistics per worker)
CFG = dict(space="mbv3-tiny", data="digits", batch_size=64, n_random=1, augment=False, lr=8e-3)


@pytest.mark.slow
@pytest.mark.ray
def test_two_ray_train_workers_resume_and_match_one_process(tmp_path, ray_local):
    from nas.distributed_train import ray_storage, train_distributed

    out = tmp_path / "w2.pt"
    first = train_distributed(TrainConfig(epochs=1, **CFG), out, workers=2, progress=False)
    assert first.epochs_done == 1 and out.is_file() and ray_storage(out).is_dir()
    assert first.history[0]["workers"] == 2 and first.history[0]["subnets_same_on_all_workers"]
    with pytest.raises(InputError, match="exists"):
        train_distributed(TrainConfig(epochs=2, **CFG), out, workers=2, progress=False)
    resumed = train_distributed(TrainConfig(epochs=2, **CFG), out, workers=2, resume=True, progress=False)
    assert resumed.epochs_done == 2 and [h["epoch"] for h in resumed.history] == [1, 2]
    assert resumed.history[0] == first.history[0]  # continued from the checkpoint, not restarted
    # the one-process run at equal epochs (same protocol: 1 epoch, then resumed to 2), with one torch thread like each
    # Ray worker: the thread count alone changes float sums enough to move this 2-epoch figure by ~2.5 points
    # (experiments/results/training.md), more than the 1-point bar
    train_supernet(TrainConfig(epochs=1, **CFG), tmp_path / "w1.pt", progress=False, threads=1)
    train_supernet(TrainConfig(epochs=2, **CFG), tmp_path / "w1.pt", resume=True, progress=False, threads=1)
    largest = get_space("mbv3-tiny").largest()
    acc = {}
    for name in ("w1", "w2"):
        net, data, meta = load_for_eval(tmp_path / f"{name}.pt")
        assert meta["epochs"] == 2
        acc[name] = evaluate(net, largest, data, "test")
    assert acc["w1"] > 80.0  # both really learned
    # 2 points: twice the binomial standard error of a difference of two ~98 % accuracies on digits' 360 test
    # images; which float sums a run takes (threads, memory layout) moves it by 1-2.5 points (training.md)
    assert abs(acc["w2"] - acc["w1"]) <= 2.0, acc
