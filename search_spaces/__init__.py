"""What can be searched: choices, `SubnetConfig`, supernets, block decomposition, exact profiles."""
import os

# OpenMP threads that spin while waiting make torch 40-50x slower on a loaded machine (2 threads on 2 busy cores:
# 7.6 s instead of 0.15 s to evaluate a tiny subnet, measured here); passive waiting costs nothing when idle.
# It only takes effect if set before torch is first imported, so every hwnas entry point imports this first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from search_spaces.block_spec import BlockSpec
from search_spaces.config import SubnetConfig
from search_spaces.errors import HwnasError, InputError, UnknownNameError
from search_spaces.presets import SPACE_SPECS, get_spec
from search_spaces.profile import Profile
from search_spaces.registry import Registry
from search_spaces.space import SearchSpace, get_space, list_spaces, space_of
from search_spaces.spec import SpaceSpec, StageSpec, make_divisible
from search_spaces.family import FAMILIES, Family, FamilyConfig, config_from_dict, family_of  # noqa: I001

import search_spaces.vit  # noqa: E402,F401 -- registers the vit family and its presets

__all__ = [
    "FAMILIES", "BlockSpec", "Family", "FamilyConfig", "HwnasError", "InputError", "Profile", "Registry", "SPACE_SPECS", "SearchSpace", "SpaceSpec",
    "StageSpec", "SubnetConfig", "UnknownNameError", "config_from_dict", "family_of", "get_space", "get_spec", "list_spaces", "make_divisible",
    "space_of",
]
