"""`mlp`: an ensemble of small MLPs over the one-hot features of `SearchSpace.encode` (Once-for-All's accuracy
predictor, several members for a mean and a spread).

All members train at once as one batched module. The first layer is an embedding-bag sum of the weight rows of the
active one-hot features, so inference reads the compact `to_indices` matrix directly: 100,000 configs take a few
tens of milliseconds, and the dense one-hot matrix is never built.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from search_spaces import SearchSpace
from search_spaces.errors import bad_value

from predictors.base import PREDICTORS, Predictor
from predictors.features import FeatureLayout


PREDICT_CHUNK = 8192


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with `n` intra-op threads, then restore (small full-batch training is fastest on one thread)."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class EnsembleMLP(nn.Module):
    """K independent MLPs (ReLU, `layers` hidden layers of `hidden` units) evaluated as one module.

    Input: (n, groups) int64 feature ids, `n_features` meaning "inactive" (a zero row). Output: (n, K).
    """

    def __init__(self, n_features: int, n_groups: int, members: int, hidden: int, layers: int,
                 classes: np.ndarray, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.n_features, self.members, self.hidden = n_features, members, hidden
        k, h = members, hidden
        b_in = 1.0 / math.sqrt(n_groups)  # ~n_groups features are active per input
        b_h = 1.0 / math.sqrt(h)

        def u(shape: tuple[int, ...], bound: float) -> nn.Parameter:
            return nn.Parameter((torch.rand(shape, generator=generator) * 2 - 1) * bound)

        emb = u((n_features + 1, k * h), b_in)
        with torch.no_grad():
            emb[n_features].zero_()
        self.emb = emb
        # weights tied across positions ("any block with 4-bit weights"), added to each position's own weights
        n_classes = int(classes.max()) + 1 if classes.size and classes.max() >= 0 else 0
        self.shared = nn.Parameter(torch.zeros(n_classes, k * h))
        self.register_buffer("classes", torch.from_numpy(np.where(classes < 0, n_classes, classes)), persistent=False)
        self.b_in = u((k * h,), b_in)
        self.w_hidden = nn.ParameterList([u((k, h, h), b_h) for _ in range(layers - 1)])
        self.b_hidden = nn.ParameterList([u((k, h), b_h) for _ in range(layers - 1)])
        self.w_out = u((k, h), b_h)
        self.b_out = u((k,), b_h)

    def forward(self, onehot: torch.Tensor | None = None, ids: torch.Tensor | None = None,
                table: torch.Tensor | None = None) -> torch.Tensor:
        """From the dense one-hot matrix (training: one matmul, cheap to differentiate) or from fused-group ids and
        their precomputed `table` (inference: an embedding-bag sum); both give the same first layer."""
        if onehot is not None:
            n = onehot.shape[0]
            z = onehot @ self.first_layer() + self.b_in
        else:
            assert ids is not None and table is not None
            n = ids.shape[0]
            z = F.embedding_bag(ids, table, mode="sum") + self.b_in
        z = F.relu(z).view(n, self.members, self.hidden)
        for w, b in zip(self.w_hidden, self.b_hidden):
            z = F.relu(torch.einsum("nkh,khg->nkg", z, w) + b)
        return torch.einsum("nkh,kh->nk", z, self.w_out) + self.b_out

    def first_layer(self) -> torch.Tensor:
        """(n_features, K * hidden) input weights: each feature's own row plus its shared class row."""
        padded = torch.cat([self.shared, self.shared.new_zeros(1, self.shared.shape[1])])  # unclassed: + 0
        return self.emb[: self.n_features] + padded[self.classes]

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().copy() for k, v in self.state_dict().items()}

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        expected = {k: tuple(v.shape) for k, v in self.state_dict().items()}
        got = {k: tuple(v.shape) for k, v in arrays.items()}
        if expected != got:
            bad = sorted(set(expected.items()) ^ set(got.items()))[0]
            raise bad_value("predictor weights", f"{bad[0]} {bad[1]}", f"the shapes {expected}")
        self.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()})


@PREDICTORS.register("mlp")
class MLPPredictor(Predictor):
    """Ensemble of `members` MLPs (mean and spread) over the float features (or, with `quant`, bits too)."""

    kind = "mlp"

    has_std = True

    def __init__(self, space: str | SearchSpace, *, quant: bool = False, seed: int = 0, members: int = 5,
                 hidden: int = 32, layers: int = 2, epochs: int = 200, lr: float = 1e-2,
                 weight_decay: float = 3e-2, batch_size: int = 1024) -> None:
        super().__init__(space, quant=quant, seed=seed)
        for name, value, lo in (("members", members, 1), ("hidden", hidden, 1), ("layers", layers, 1),
                                ("epochs", epochs, 1), ("batch_size", batch_size, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < lo:
                raise bad_value(name, value, f"an integer >= {lo}")
        if not lr > 0:
            raise bad_value("lr", lr, "a number > 0")
        if not weight_decay >= 0:
            raise bad_value("weight_decay", weight_decay, "a number >= 0")
        self.members, self.hidden, self.layers = members, hidden, layers
        self.epochs, self.lr, self.weight_decay, self.batch_size = epochs, float(lr), float(weight_decay), batch_size
        self.net: EnsembleMLP | None = None
        self.y_mean, self.y_std = 0.0, 1.0
        self._table: torch.Tensor | None = None  # fused first-layer rows for inference, built on first predict

    def _inference_table(self) -> torch.Tensor:
        assert self.net is not None
        if self._table is None:
            emb = self.net.first_layer().detach().numpy()
            self._table = torch.from_numpy(self.layout.joint_table(emb))
        return self._table

    def _new_net(self, layout: FeatureLayout | None = None, seed: int | None = None) -> EnsembleMLP:
        layout = layout or self.layout
        g = torch.Generator().manual_seed(self.seed if seed is None else seed)
        return EnsembleMLP(layout.n_features, layout.n_groups, self.members, self.hidden, self.layers,
                           layout.shared_classes()[1], g)

    # ---- training -----------------------------------------------------------------------------------
    def _fit(self, idx: np.ndarray, y: np.ndarray, weight: np.ndarray | None) -> None:
        self.y_mean = float(np.average(y, weights=weight))
        self.y_std = float(np.sqrt(np.average((y - self.y_mean) ** 2, weights=weight))) or 1.0
        self.net = self._new_net()
        loss = self._train(idx, y, weight, self.epochs, self.lr, anchor=0.0, weight_decay=self.weight_decay)
        self.train_info = {"final_train_loss": loss, "y_mean": self.y_mean, "y_std": self.y_std}

    def _train(self, idx: np.ndarray, y: np.ndarray, weight: np.ndarray | None, epochs: int, lr: float,
               anchor: float, weight_decay: float) -> float:
        """Adam with a cosine schedule on the standardised targets; `weight_decay` pulls the weights towards zero,
        `anchor` > 0 towards the starting weights (fine-tuning a transferred model on few samples without
        forgetting)."""
        assert self.net is not None
        net = self.net
        self._table = None
        x = torch.from_numpy(self.layout.onehot(idx))
        t = torch.from_numpy(((y - self.y_mean) / self.y_std).astype(np.float32))
        n = x.shape[0]
        w = torch.from_numpy((np.ones(n) if weight is None else weight / weight.mean()).astype(np.float32))
        bs = min(self.batch_size, n)
        steps_per_epoch = math.ceil(n / bs)
        total = epochs * steps_per_epoch
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
        start = [p.detach().clone() for p in net.parameters()] if anchor > 0 else []
        decay = [p for name, p in net.named_parameters() if not name.startswith("b")]
        rng = np.random.default_rng(self.seed)
        last = float("nan")
        net.train()
        with torch_threads(1):
            for _ in range(epochs):
                order = torch.from_numpy(rng.permutation(n)) if bs < n else None
                for s in range(steps_per_epoch):
                    rows = order[s * bs : (s + 1) * bs] if order is not None else slice(None)
                    pred = net(onehot=x[rows])
                    err = (pred - t[rows].unsqueeze(1)) ** 2  # (batch, members)
                    loss = (err.mean(dim=1) * w[rows]).mean() * self.members
                    reg = sum((p**2).sum() for p in decay) * weight_decay
                    if anchor > 0:
                        reg = reg + anchor * sum(((p - p0) ** 2).sum() for p, p0 in zip(net.parameters(), start))
                    opt.zero_grad(set_to_none=True)
                    (loss + reg).backward()
                    opt.step()
                    sched.step()
                    last = float(loss.detach()) / self.members
        net.eval()
        with torch.no_grad():
            net.emb[self.layout.n_features].zero_()
        return round(last, 6)

    # ---- inference ------------------------------------------------------------------------------------
    def _predict(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert self.net is not None
        n = idx.shape[0]
        mean, std = np.empty(n), np.zeros(n)
        table = self._inference_table()
        with torch.inference_mode(), torch_threads(1):  # 1 thread: chunks are small, and cores are shared
            for s in range(0, n, PREDICT_CHUNK):  # chunks keep the activations in cache
                ids = torch.from_numpy(self.layout.joint_ids(idx[s : s + PREDICT_CHUNK]))
                out = self.net(ids=ids, table=table).double().numpy() * self.y_std + self.y_mean
                mean[s : s + PREDICT_CHUNK] = out.mean(axis=1)
                if out.shape[1] > 1:
                    std[s : s + PREDICT_CHUNK] = out.std(axis=1)
        return mean, std

    # ---- persistence -----------------------------------------------------------------------------------
    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        assert self.net is not None
        return self.net.arrays(), {"normalisation": {"y_mean": self.y_mean, "y_std": self.y_std}}

    def _load_state(self, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        norm = meta["normalisation"]
        self.y_mean, self.y_std = float(norm["y_mean"]), float(norm["y_std"])
        self.net = self._new_net()
        self.net.load_arrays(tensors)
        self._table = None
        self.net.eval()
