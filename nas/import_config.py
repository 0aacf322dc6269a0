"""`ImportConfig`: converting Once-for-All's published supernet (`nas.ofa_import.import_ofa`), defined once --
`hwnas supernet import-ofa` makes its options from these fields."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal, get_args

from search_spaces.settings import setting

OfaSpace = Literal["mbv3", "mbv3-w1.2"]
OFA_SPACES: tuple[str, ...] = get_args(OfaSpace)


@dataclass(frozen=True, kw_only=True)
class ImportConfig:
    """Convert an OFA checkpoint file into an hwnas supernet checkpoint at `out`."""

    checkpoint: str | os.PathLike[str] = setting(help="Once-for-All's checkpoint file (its model zoo's).",
                                                 required=True)
    space: OfaSpace = setting(help="mbv3 for ofa_mbv3_d234_e346_k357_w1.0, mbv3-w1.2 for ..._w1.2.", required=True)
    out: str | os.PathLike[str] = setting(help="hwnas supernet checkpoint to write.", required=True)
