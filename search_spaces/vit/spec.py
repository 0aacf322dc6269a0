"""`ViTSpec`: the static description of a vision-transformer weight-sharing space (AutoFormer / HAT style) and its
presets. Elastic: embedding dimension (a smaller one is a prefix of the larger), depth (the first layers), per layer
the number of heads (a prefix of the heads; the head dimension is fixed), the MLP ratio and the MLP keep ratio
(hidden units sorted by importance, as mbv3 prunes hidden channels), and per layer weight / activation bits of the
linear layers. The patch size, and so the token count, is fixed per preset."""
from __future__ import annotations

from dataclasses import dataclass, field

from search_spaces.spec import make_divisible


@dataclass(frozen=True)
class ViTSpec:
    name: str
    in_channels: int
    num_classes: int
    image_size: int
    patch: int
    embed_choices: tuple[int, ...]
    depth_choices: tuple[int, ...]
    heads_choices: tuple[int, ...]
    head_dim: int
    mlp_ratio_choices: tuple[float, ...]
    keep_choices: tuple[float, ...]
    weight_bit_choices: tuple[int, ...] = (4, 8, 32)
    act_bit_choices: tuple[int, ...] = (8, 32)
    hidden_divisor: int = 8
    dropout: float = 0.0
    description: str = field(default="", compare=False)

    @property
    def resolutions(self) -> tuple[int, ...]:
        """One resolution: the patch grid is part of the preset (the other families' resolutions are elastic)."""
        return (self.image_size,)

    @property
    def tokens(self) -> int:
        """Patches plus the class token."""
        return (self.image_size // self.patch) ** 2 + 1

    @property
    def max_depth(self) -> int:
        return max(self.depth_choices)

    @property
    def max_embed(self) -> int:
        return max(self.embed_choices)

    @property
    def max_heads(self) -> int:
        return max(self.heads_choices)

    def mlp_hidden(self, embed: int, ratio: float, keep: float = 1.0) -> int:
        """Hidden units of an MLP: embed x ratio, then the keep ratio, on multiples of `hidden_divisor`."""
        full = make_divisible(embed * ratio, self.hidden_divisor)
        return full if keep >= 1.0 else make_divisible(full * keep, self.hidden_divisor)

    @property
    def max_hidden(self) -> int:
        return self.mlp_hidden(self.max_embed, max(self.mlp_ratio_choices))


VIT_TINY = ViTSpec(
    name="vit-tiny", in_channels=1, num_classes=10, image_size=32, patch=8, embed_choices=(32, 48, 64),
    depth_choices=(2, 3, 4), heads_choices=(1, 2, 4), head_dim=16, mlp_ratio_choices=(2.0, 3.0, 4.0),
    keep_choices=(0.5, 0.75, 1.0),
    description="vision transformer for 32 px grayscale inputs (patch 8, 17 tokens, 10 classes): tests, demo")
# the largest subnet is DeiT-S (embed 384, 6 heads of 64, MLP ratio 4, depth 12: 22,050,664 parameters)
VIT_S = ViTSpec(
    name="vit-s", in_channels=3, num_classes=1000, image_size=224, patch=16, embed_choices=(192, 256, 320, 384),
    depth_choices=(10, 11, 12), heads_choices=(3, 4, 5, 6), head_dim=64, mlp_ratio_choices=(3.0, 3.5, 4.0),
    keep_choices=(0.5, 0.75, 1.0),
    description="vision transformer, ImageNet size (224 px, patch 16, 197 tokens); largest subnet DeiT-S")
