"""The static description of a MobileNetV3-family weight-sharing space (what Once-for-All calls the supernet's
hyper-parameters): widths, strides, activations, SE placement and the elastic choices."""
from __future__ import annotations

from dataclasses import dataclass, field


def make_divisible(v: float, divisor: int, min_val: int | None = None) -> int:
    """Round a channel count to a multiple of `divisor` exactly as Once-for-All (and TF MobileNet) does."""
    min_val = divisor if min_val is None else min_val
    new_v = max(min_val, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:  # never round down by more than 10 %
        new_v += divisor
    return new_v


@dataclass(frozen=True)
class StageSpec:
    """One elastic stage: up to max(depth choices) inverted-residual blocks."""

    width: int  # output channels of every block in the stage
    stride: int  # stride of the stage's first block
    act: str  # "relu" or "hswish"
    se: bool  # squeeze-and-excitation in every block


@dataclass(frozen=True)
class SpaceSpec:
    """Everything that fixes the supernet's shape; a `SubnetConfig` picks among its choices."""

    name: str
    in_channels: int
    num_classes: int
    resolutions: tuple[int, ...]
    stem_width: int
    stem_stride: int
    first_block_width: int  # the fixed depthwise-separable block after the stem (kernel 3, expand 1)
    first_block_stride: int
    stages: tuple[StageSpec, ...]
    final_expand_width: int
    feature_mix_width: int
    kernel_choices: tuple[int, ...]
    expand_choices: tuple[int, ...]
    depth_choices: tuple[int, ...]
    keep_choices: tuple[float, ...]
    weight_bit_choices: tuple[int, ...]
    act_bit_choices: tuple[int, ...]
    channel_divisor: int = 8
    se_reduction: int = 4
    dropout: float = 0.1
    stem_act: str = "hswish"
    first_block_act: str = "relu"
    head_act: str = "hswish"
    description: str = field(default="", compare=False)

    @property
    def n_stages(self) -> int:
        return len(self.stages)

    @property
    def max_depth(self) -> int:
        return max(self.depth_choices)

    @property
    def n_positions(self) -> int:
        """Number of elastic block positions (stages x max depth)."""
        return self.n_stages * self.max_depth

    def stage_in_width(self, stage: int) -> int:
        return self.first_block_width if stage == 0 else self.stages[stage - 1].width

    def position_stage(self, position: int) -> tuple[int, int]:
        """(stage index, index within the stage) of an elastic block position."""
        return divmod(position, self.max_depth)

    def hidden_channels(self, in_ch: int, expand: float, keep: float) -> int:
        """Kept hidden channels of an inverted-residual block: OFA's middle width, then the pruning ratio."""
        full = make_divisible(round(in_ch * expand), self.channel_divisor)
        if keep >= 1.0:
            return full
        return make_divisible(full * keep, self.channel_divisor)

    def max_hidden_channels(self, in_ch: int) -> int:
        return self.hidden_channels(in_ch, max(self.expand_choices), 1.0)

    def se_channels(self, hidden: int) -> int:
        return make_divisible(hidden // self.se_reduction, self.channel_divisor)

    def spatial_after(self, size: int, stride: int) -> int:
        """Output size of a 'same'-padded convolution (odd kernel, padding k//2)."""
        return (size - 1) // stride + 1
