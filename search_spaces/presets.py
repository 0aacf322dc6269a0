"""The registered search spaces. `mbv3` is Once-for-All's MobileNetV3 space (w1.0), `mbv3-w1.2` its wider
sibling, `mbv3-tiny` a small member of the same family for 16-32 px inputs (tests and the demo)."""
from __future__ import annotations

import dataclasses

from search_spaces.errors import bad_value
from search_spaces.registry import Registry
from search_spaces.spec import SpaceSpec, StageSpec, make_divisible

SPACE_SPECS: Registry[SpaceSpec] = Registry("search space")

# Once-for-All, ofa/imagenet_classification/elastic_nn/networks/ofa_mbv3.py
_OFA_BASE_WIDTHS = (16, 16, 24, 40, 80, 112, 160, 960, 1280)
_OFA_STRIDES = (1, 2, 2, 2, 1, 2)
_OFA_ACTS = ("relu", "relu", "relu", "hswish", "hswish", "hswish")
_OFA_SE = (False, False, True, False, True, True)

QUANT_WEIGHT_BITS = (4, 8, 32)
QUANT_ACT_BITS = (8, 32)
# Once-for-All's elastic choices, plus pruning and bit-widths; every preset of the family uses them
ELASTIC_CHOICES = {
    "kernel_choices": (3, 5, 7),
    "expand_choices": (3, 4, 6),
    "depth_choices": (2, 3, 4),
    "keep_choices": (0.5, 0.75, 1.0),
    "weight_bit_choices": QUANT_WEIGHT_BITS,
    "act_bit_choices": QUANT_ACT_BITS,
}


def ofa_mbv3_spec(name: str, width_mult: float, num_classes: int = 1000) -> SpaceSpec:
    w = [make_divisible(b * width_mult, 8) for b in _OFA_BASE_WIDTHS]
    stages = tuple(
        StageSpec(width=w[i + 2], stride=_OFA_STRIDES[i + 1], act=_OFA_ACTS[i + 1], se=_OFA_SE[i + 1])
        for i in range(5)
    )
    return SpaceSpec(
        name=name,
        in_channels=3,
        num_classes=num_classes,
        resolutions=tuple(range(128, 225, 4)),
        stem_width=w[0],
        stem_stride=2,
        first_block_width=w[1],
        first_block_stride=_OFA_STRIDES[0],
        stages=stages,
        final_expand_width=w[7],
        feature_mix_width=w[8],
        **ELASTIC_CHOICES,
        description=f"Once-for-All MobileNetV3 w{width_mult}: ImageNet-size inputs, 1000 classes",
    )


def tiny_spec() -> SpaceSpec:
    acts = ("relu", "relu", "hswish", "hswish", "hswish")
    se = (False, True, False, True, True)
    widths = (16, 24, 32, 48, 64)
    strides = (2, 2, 1, 2, 1)
    return SpaceSpec(
        name="mbv3-tiny",
        in_channels=1,
        num_classes=10,
        resolutions=(16, 20, 24, 28, 32),
        stem_width=8,
        stem_stride=1,
        first_block_width=8,
        first_block_stride=1,
        stages=tuple(StageSpec(w, s, a, e) for w, s, a, e in zip(widths, strides, acts, se)),
        final_expand_width=192,
        feature_mix_width=256,
        **ELASTIC_CHOICES,
        description="MobileNetV3 family for 16-32 px inputs (grayscale, 10 classes): tests and the demo",
    )


SPACE_SPECS.register("mbv3", ofa_mbv3_spec("mbv3", 1.0))
SPACE_SPECS.register("mbv3-w1.2", ofa_mbv3_spec("mbv3-w1.2", 1.2))
SPACE_SPECS.register("mbv3-tiny", tiny_spec())
MBV3_PRESETS = ("mbv3", "mbv3-w1.2", "mbv3-tiny")


def get_spec(name: str, num_classes: int | None = None, in_channels: int | None = None) -> SpaceSpec:
    """The registered spec, optionally with another class count or input channel count (e.g. for a data set)."""
    spec = SPACE_SPECS.get(name)
    if num_classes is not None:
        if not isinstance(num_classes, int) or num_classes < 2:
            raise bad_value("num_classes", num_classes, "an integer >= 2")
        spec = dataclasses.replace(spec, num_classes=num_classes)
    if in_channels is not None:
        if in_channels not in (1, 3):
            raise bad_value("in_channels", in_channels, "1 or 3")
        spec = dataclasses.replace(spec, in_channels=in_channels)
    return spec
