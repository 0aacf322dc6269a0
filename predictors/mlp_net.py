"""The torch side of the `mlp` predictor: the ensemble module and a thread-count guard (imported when an mlp is
built or loaded, so registering the kind -- listing `PREDICTORS` -- imports no torch)."""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from search_spaces.errors import bad_value


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
