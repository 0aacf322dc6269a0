"""The vision-transformer family (`vit`): one folder, registered here with its presets `vit-tiny` and `vit-s`."""
from search_spaces.block_spec import BLOCK_KEY_TYPES
from search_spaces.family import FAMILIES, register_preset
from search_spaces.vit.blocks import OPS, ViTBlockSpec
from search_spaces.vit.config import ViTConfig
from search_spaces.vit.family import ViTFamily
from search_spaces.vit.spec import VIT_S, VIT_TINY, ViTSpec

FAMILIES.register("vit", ViTFamily)
for _spec in (VIT_TINY, VIT_S):
    register_preset("vit", _spec)
BLOCK_KEY_TYPES.update({op: ViTBlockSpec for op in OPS})

__all__ = ["ViTBlockSpec", "ViTConfig", "ViTFamily", "ViTSpec"]
