"""Once-for-All's published MobileNetV3 supernets (`ofa_mbv3_d234_e346_k357_w1.0` / `w1.2`) as hwnas checkpoints.

hwnas's `mbv3` / `mbv3-w1.2` spaces are OFA's architecture for architecture, so the conversion is a renaming of
state-dict keys (`ofa_key_map`) with every shape checked; nothing is re-trained or re-ordered (OFA stores its hidden
channels sorted by importance, as hwnas expects). OFA has no activation-range buffers: they start empty, so the
imported supernet is float (keep ratio 1.0 everywhere is its own weights); quantized subnets get their ranges from
post-training recalibration (`nas.train.prepare_subnet`) or from quantization-aware fine-tuning
(`hwnas supernet train --init-from`).

OFA's checkpoints exist in a few key spellings (`mobile_inverted_conv` for `conv`, `bn.bn` / `conv.conv` for its
dynamic wrappers, a `module.` prefix from DataParallel); `canonical_key` folds them into one.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from nas.checkpoint import load_torch_file
from nas.import_config import OFA_SPACES, ImportConfig
from search_spaces import InputError, get_space
from search_spaces.files import sha256_file
from search_spaces.supernet import Supernet

# ImageNet normalisation OFA trained with (ofa/imagenet_classification/data_providers/imagenet.py)
IMAGENET_NORMALIZATION = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def canonical_key(key: str) -> str:
    """One spelling for the variants OFA's own `load_state_dict` accepts."""
    key = key.removeprefix("module.")
    for old, new in ((".mobile_inverted_conv.", ".conv."), (".bn.bn.", ".bn."), (".conv.conv.weight", ".conv.weight"),
                     (".linear.linear.", ".linear.")):
        key = key.replace(old, new)
    return key


def _bn_pairs(ofa: str, hw: str) -> dict[str, str]:
    return {f"{ofa}.{t}": f"{hw}.{t}" for t in _BN}


def ofa_key_map(net: Supernet) -> dict[str, str]:
    """Canonical OFA key -> hwnas state-dict key, for every tensor the OFA checkpoint provides."""
    m: dict[str, str] = {"first_conv.conv.weight": "stem.conv.weight", **_bn_pairs("first_conv.bn", "stem.bn"),
                         "blocks.0.conv.depth_conv.conv.weight": "first_block.depthwise.conv.weight",
                         **_bn_pairs("blocks.0.conv.depth_conv.bn", "first_block.depthwise.bn"),
                         "blocks.0.conv.point_linear.conv.weight": "first_block.pointwise.conv.weight",
                         **_bn_pairs("blocks.0.conv.point_linear.bn", "first_block.pointwise.bn")}
    for p, blk in enumerate(net.blocks):
        o, h = f"blocks.{p + 1}.conv", f"blocks.{p}"
        m[f"{o}.inverted_bottleneck.conv.weight"] = f"{h}.expand_w"
        m.update(_bn_pairs(f"{o}.inverted_bottleneck.bn", f"{h}.expand_bn"))
        m[f"{o}.depth_conv.conv.weight"] = f"{h}.dw_w"
        for name in blk.kernel_transforms:
            m[f"{o}.depth_conv.conv.{name}_matrix"] = f"{h}.kernel_transforms.{name}"
        m.update(_bn_pairs(f"{o}.depth_conv.bn", f"{h}.dw_bn"))
        if blk.se:
            for part in ("reduce", "expand"):
                for t in ("weight", "bias"):
                    m[f"{o}.depth_conv.se.fc.{part}.{t}"] = f"{h}.se_{part}.{t}"
        m[f"{o}.point_linear.conv.weight"] = f"{h}.point_w"
        m.update(_bn_pairs(f"{o}.point_linear.bn", f"{h}.point_bn"))
    m.update({"final_expand_layer.conv.weight": "final_expand.conv.weight",
              **_bn_pairs("final_expand_layer.bn", "final_expand.bn"),
              "feature_mix_layer.conv.weight": "head.mix.weight",
              "classifier.linear.weight": "head.classifier.weight", "classifier.linear.bias": "head.classifier.bias"})
    return m


def _listing(keys: list[str], limit: int = 6) -> str:
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def supernet_from_ofa_state_dict(state_dict: dict[str, Any], space: str = "mbv3") -> Supernet:
    """An hwnas supernet carrying OFA's weights. Unknown, missing or mis-shaped keys raise one error naming them."""
    if space not in OFA_SPACES:
        raise InputError(f"space: got {space!r}, allowed: one of {', '.join(OFA_SPACES)} (Once-for-All's "
                         "published MobileNetV3 supernets)")
    if not isinstance(state_dict, dict) or not state_dict:
        raise InputError("OFA checkpoint: no state dict (expected a dict of tensors, or {'state_dict': ...})")
    net = get_space(space).build_supernet()
    key_map = ofa_key_map(net)
    ours = net.state_dict()
    given: dict[str, torch.Tensor] = {}
    not_tensors = []
    for k, v in state_dict.items():
        if not isinstance(v, torch.Tensor):
            not_tensors.append(str(k))
        else:
            given[canonical_key(str(k))] = v
    unknown = sorted(set(given) - set(key_map))
    # num_batches_tracked is absent from checkpoints saved by old torch; it only matters for momentum=None BN
    missing = sorted(k for k in set(key_map) - set(given) if not k.endswith("num_batches_tracked"))
    shaped = sorted(f"{k} {tuple(given[k].shape)} (expected {tuple(ours[key_map[k]].shape)})"
                    for k in set(given) & set(key_map) if given[k].shape != ours[key_map[k]].shape)
    problems = [f"{label} keys: {_listing(ks)}" for label, ks in
                (("not a tensor", not_tensors), ("unknown", unknown), ("missing", missing), ("mis-shaped", shaped))
                if ks]
    if problems:
        other = next(s for s in OFA_SPACES if s != space)
        hint = f"; a checkpoint of the other width? try --space {other}" if shaped else ""
        raise InputError(f"OFA checkpoint does not fit space {space!r}: " + "; ".join(problems) + hint)
    new = dict(ours)
    for k, v in given.items():
        new[key_map[k]] = v.detach().to(device="cpu", dtype=ours[key_map[k]].dtype)
    net.load_state_dict(new)
    return net.eval()


def read_ofa_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The state dict inside an OFA checkpoint file (`{'state_dict': ...}` as its model zoo stores it, or bare)."""
    obj = load_torch_file(path, "CHECKPOINT", "Once-for-All checkpoint")
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise InputError(f"CHECKPOINT: {path} holds a {type(obj).__name__}, allowed: a state dict")
    return obj


def import_ofa(config: ImportConfig) -> dict[str, Any]:
    """Convert an OFA checkpoint file into an hwnas supernet checkpoint at `config.out`; returns its meta."""
    from nas.checkpoint import save_supernet

    checkpoint, space, out = config.checkpoint, config.space, config.out
    net = supernet_from_ofa_state_dict(read_ofa_checkpoint(checkpoint), space)
    meta = {"source": "once-for-all", "ofa_checkpoint": Path(checkpoint).name,
            "ofa_sha256": sha256_file(checkpoint), "normalization": IMAGENET_NORMALIZATION, "keep": 1.0,
            "epochs": 0}
    save_supernet(out, net, meta)
    return meta


__all__ = ["IMAGENET_NORMALIZATION", "OFA_SPACES", "ImportConfig", "canonical_key", "import_ofa", "ofa_key_map",
           "read_ofa_checkpoint", "supernet_from_ofa_state_dict"]
