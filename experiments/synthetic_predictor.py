"""`SyntheticPredictor`: `predictors.synthetic.synthetic_accuracy` without noise, as the accuracy predictor of the
search benchmarks.

Why not a predictor fitted to synthetic labels: hwnas's predictors clip their output to the range they were trained
on, and the search's best subnets lie beyond it, so a fitted predictor ties every good subnet at its clip value
and no search can be told from another at the top. The hidden function itself ranks every subnet, is fixed by its
seed and costs about what a fitted MLP does per batch.
"""
from __future__ import annotations

import numpy as np

from predictors.synthetic import synthetic_accuracy
from search_spaces import SearchSpace


class SyntheticPredictor:
    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space = space.name
        self._space = space
        self.seed = seed
        self.info = {"kind": "synthetic", "seed": seed, "noise": 0.0}

    def predict(self, x: np.ndarray) -> np.ndarray:
        return synthetic_accuracy(self._space, x, seed=self.seed, noise=0.0)
