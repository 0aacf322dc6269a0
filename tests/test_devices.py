"""`--device` / `--amp`: parsing, device-independent checkpoints, and the CUDA paths (marked `gpu`: they skip,
saying why, where torch sees no CUDA device)."""
from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from nas.device import CPU, Runtime, resolve_amp, resolve_device
from search_spaces import HwnasError, InputError

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device; torch sees none here")


@pytest.fixture
def ray_with_gpu(ray_local):
    if not ray_local.cluster_resources().get("GPU"):
        pytest.skip("the session's Ray instance has no GPU resource")
    return ray_local


def test_device_and_amp_choices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InputError, match="device: got 'tpu', allowed: auto, cpu, cuda or cuda:N"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(HwnasError, match="sees no CUDA device"):
            resolve_device("cuda:1")
    cpu = torch.device("cpu")
    assert resolve_amp(None, cpu) is None and resolve_amp("bf16", cpu) is torch.bfloat16
    assert resolve_amp(None, torch.device("cuda")) is torch.bfloat16
    with pytest.raises(InputError, match="fp16 autocast needs CUDA"):
        resolve_amp("fp16", cpu)
    with pytest.raises(InputError, match="amp: got 'int8'"):
        resolve_amp("int8", cpu)


def test_cli_rejects_a_bad_device_with_exit_2(tmp_path):
    from nas.cli.main import cli

    r = CliRunner().invoke(cli, ["supernet", "train", "--space", "mbv3-tiny", "--data", "synthetic", "--epochs", "1",
                                 "--out", str(tmp_path / "x.pt"), "--device", "gpu0"])
    assert r.exit_code == 2 and "--device: got 'gpu0'" in r.output
    assert not (tmp_path / "x.pt").exists()


def test_bf16_autocast_on_cpu_trains_and_saves_cpu_tensors(tmp_path):
    """The autocast path itself (the CPU supports bf16 autocast): a step runs, the checkpoint holds float32 CPU
    tensors and evaluation agrees with float32 evaluation of the same weights to within a few points."""
    from nas.checkpoint import read_checkpoint
    from nas.train import TrainConfig, evaluate, load_for_eval, train_supernet
    from search_spaces import get_space

    rt = Runtime.from_options("cpu", "bf16")
    cfg = TrainConfig(space="mbv3-tiny", data="synthetic", epochs=1, batch_size=64, n_random=1)
    train_supernet(cfg, tmp_path / "sn.pt", progress=False, runtime=rt)
    sd = read_checkpoint(tmp_path / "sn.pt")["state_dict"]
    assert all(t.device.type == "cpu" for t in sd.values())
    assert all(t.dtype in (torch.float32, torch.int64) for t in sd.values())
    net, data, meta = load_for_eval(tmp_path / "sn.pt")
    assert meta["trained_on"] == {"device": "cpu", "amp": "bf16"}
    c = get_space("mbv3-tiny", num_classes=4).largest()
    a32, a16 = evaluate(net, c, data, calib_batches=2), evaluate(net, c, data, calib_batches=2, runtime=rt)
    assert abs(a32 - a16) <= 10.0


@pytest.mark.gpu
@needs_cuda
def test_cuda_autocast_training_step_and_evaluation(tmp_path):
    from nas.checkpoint import load_supernet
    from nas.train import TrainConfig, evaluate, load_for_eval, train_supernet
    from search_spaces import get_space

    rt = Runtime.from_options("cuda", None)
    assert rt.amp is torch.bfloat16
    cfg = TrainConfig(space="mbv3-tiny", data="digits", epochs=1, batch_size=128, n_random=2)
    res = train_supernet(cfg, tmp_path / "sn.pt", progress=False, runtime=rt)
    assert res.history[-1]["loss"] == res.history[-1]["loss"]  # finite
    net, meta = load_supernet(tmp_path / "sn.pt")  # written on CUDA, loads on the CPU
    assert next(net.parameters()).device.type == "cpu" and meta["trained_on"]["device"].startswith("cuda")
    net, data, _ = load_for_eval(tmp_path / "sn.pt", runtime=rt)
    assert next(net.parameters()).device.type == "cuda"
    c = get_space("mbv3-tiny").largest()
    on_gpu = evaluate(net, c, data, runtime=rt)
    on_cpu = evaluate(net.cpu(), c, data, runtime=CPU)
    assert abs(on_gpu - on_cpu) <= 3.0, (on_gpu, on_cpu)
    fp16 = Runtime.from_options("cuda", "fp16")
    train_supernet(cfg, tmp_path / "fp16.pt", progress=False, runtime=fp16)  # with the gradient scaler


@pytest.mark.gpu
@pytest.mark.ray
@pytest.mark.slow
@needs_cuda
def test_ray_train_ddp_on_one_gpu(tmp_path, ray_with_gpu):
    from nas.checkpoint import read_checkpoint
    from nas.distributed_train import train_distributed
    from nas.train import TrainConfig

    cfg = TrainConfig(space="mbv3-tiny", data="digits", epochs=1, batch_size=128, n_random=1)
    res = train_distributed(cfg, tmp_path / "sn.pt", workers=1, use_gpu=True, progress=False)
    assert res.epochs_done == 1 and res.history[-1]["subnets_same_on_all_workers"]
    assert read_checkpoint(tmp_path / "sn.pt")["meta"]["trained_on"]["device"].startswith("cuda")


def test_gpu_fraction_is_validated(tmp_path):
    from nas.accuracy_dataset import CollectConfig, collect

    with pytest.raises(InputError, match="gpus_per_task: got 1.5"):
        collect(CollectConfig(supernet=tmp_path / "none.pt", data_name="digits", n=4, out=tmp_path / "a.jsonl",
                              gpus_per_task=1.5))


@pytest.mark.gpu
@pytest.mark.ray
@needs_cuda
def test_accuracy_tasks_share_a_gpu(tmp_path, ray_with_gpu):
    """Two Ray evaluation tasks at half a GPU each run side by side on one GPU, on CUDA."""
    from nas.accuracy_dataset import CollectConfig, collect, read_records
    from nas.train import TrainConfig, train_supernet

    train_supernet(TrainConfig(space="mbv3-tiny", data="synthetic", epochs=1, batch_size=64), tmp_path / "sn.pt",
                   progress=False)
    info = collect(CollectConfig(supernet=tmp_path / "sn.pt", data_name=None, n=4, out=tmp_path / "a.jsonl", workers=2,
                                 gpus_per_task=0.5, chunk_size=2, progress=False, device="cuda"))
    assert info["new"] == 4 and len(read_records(tmp_path / "a.jsonl")) == 4
