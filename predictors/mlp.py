"""`mlp`: an ensemble of small MLPs over the one-hot features of `SearchSpace.encode` (Once-for-All's accuracy
predictor, several members for a mean and a spread).

All members train at once as one batched module. The first layer is an embedding-bag sum of the weight rows of the
active one-hot features, so inference reads the compact `to_indices` matrix directly: 100,000 configs take a few
tens of milliseconds, and the dense one-hot matrix is never built.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from search_spaces import SearchSpace
from search_spaces.errors import bad_value

from predictors.base import PREDICTORS, Predictor
from predictors.features import FeatureLayout

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from predictors.mlp_net import EnsembleMLP


PREDICT_CHUNK = 8192


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
        import torch

        assert self.net is not None
        if self._table is None:
            emb = self.net.first_layer().detach().numpy()
            self._table = torch.from_numpy(self.layout.joint_table(emb))
        return self._table

    def _new_net(self, layout: FeatureLayout | None = None, seed: int | None = None) -> EnsembleMLP:
        import torch

        from predictors.mlp_net import EnsembleMLP

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
        import torch

        from predictors.mlp_net import torch_threads

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
        import torch

        from predictors.mlp_net import torch_threads

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
