"""SubnetConfig validation: every bad value is rejected with the field, the value and the allowed choices."""
from __future__ import annotations

import numpy as np
import pytest

from search_spaces import InputError, SubnetConfig, UnknownNameError, get_space, list_spaces


@pytest.fixture
def good(tiny_space):
    return tiny_space.sample(0)


def test_registry_lists_known_and_closest():
    assert {"mbv3", "mbv3-tiny"} <= set(list_spaces())
    with pytest.raises(UnknownNameError, match=r"unknown search space 'mbv4'; known: .*mbv3-tiny.*\(closest: mbv3\)"):
        get_space("mbv4")


@pytest.mark.parametrize(
    "change, pattern",
    [
        ({"resolution": 30}, r"resolution: got 30, allowed: one of \{16, 20, 24, 28, 32\}"),
        ({"depths": (2, 2, 2, 2)}, r"depths: got \[2, 2, 2, 2\], allowed: a list of 5 stage depths"),
        ({"depths": (2, 2, 2, 2, 5)}, r"depths\[4\]: got 5, allowed: one of \{2, 3, 4\}"),
        ({"kernel": "k3"}, r"kernel: got 'k3', allowed: a list"),
        ({"expand": (3.5,)}, r"expand: got \[3.5\], allowed: one value per active block"),
        ({"space": "nope"}, r"unknown search space 'nope'"),
    ],
)
def test_bad_values_name_the_field(good, change, pattern):
    with pytest.raises(InputError, match=pattern):
        good.replace(**change)


def test_bad_per_block_value_names_the_index(good):
    kernel = list(good.kernel)
    kernel[3] = 9
    with pytest.raises(InputError, match=r"kernel\[3\]: got 9, allowed: one of \{3, 5, 7\}"):
        good.replace(kernel=tuple(kernel))
    bits = list(good.weight_bits)
    bits[0] = 2
    with pytest.raises(InputError, match=r"weight_bits\[0\]: got 2, allowed: one of \{4, 8, 32\}"):
        good.replace(weight_bits=tuple(bits))


@pytest.mark.parametrize("field", ["kernel", "keep"])
@pytest.mark.parametrize("value", [True, np.True_, "3", None, [3], 3.5])
def test_a_per_block_value_that_only_hashes_like_a_choice_is_refused(good, field, value):
    """Per-block fields are matched by dict lookup when every value is a plain int or float; anything else gets the
    full check, so True (== 1, keep 1.0) or "3" never slips through as a choice."""
    values = list(getattr(good, field))
    values[2] = value
    with pytest.raises(InputError, match=rf"{field}\[2\]: got "):
        good.replace(**{field: tuple(values)})


def test_activation_bits_need_quantized_weights(good):
    n = good.n_blocks
    with pytest.raises(InputError, match=r"act_bits\[0\]: got 8 with weight_bits\[0\]=32"):
        good.replace(weight_bits=(32,) * n, act_bits=(8,) * n)
    assert good.replace(weight_bits=(8,) * n, act_bits=(32,) * n).is_quantized  # weight-only is allowed


def test_values_are_normalised_to_the_choices(good):
    same = good.replace(expand=tuple(float(e) for e in good.expand), keep=tuple(good.keep))
    assert same == good and hash(same) == hash(good)
    assert all(type(e) is int for e in same.expand)


def test_dict_and_json_errors():
    with pytest.raises(InputError, match=r"config key 'kernels'"):
        SubnetConfig.from_dict({"space": "mbv3-tiny", "kernels": [3]})
    with pytest.raises(InputError, match=r"version: got 99"):
        SubnetConfig.from_dict({"version": 99})
    with pytest.raises(InputError, match=r"resolution: missing"):
        SubnetConfig.from_dict({"space": "mbv3-tiny", "depths": [2] * 5})
    with pytest.raises(InputError, match=r"config: not valid JSON"):
        SubnetConfig.from_json("{nope")


def test_ofa_format_in_and_out():
    ofa = {"ks": [3, 5, 7, 3] * 5, "e": [3, 4, 6, 6] * 5, "d": [2, 3, 4, 2, 3], "image_size": 160}
    c = SubnetConfig.from_ofa(ofa)
    assert c.space == "mbv3" and c.resolution == 160 and c.depths == (2, 3, 4, 2, 3)
    assert c.kernel[:2] == (3, 5) and c.kernel[2:5] == (3, 5, 7)  # stage 1 starts at position 4
    assert c.to_ofa()["ks"][:2] == [3, 5] and SubnetConfig.from_ofa(c.to_ofa()) == c
    assert SubnetConfig.from_dict(ofa) == c  # from_dict recognises the OFA keys
    with pytest.raises(InputError, match=r"ks: got \[7\], allowed: a list of 20 values"):
        SubnetConfig.from_ofa({"ks": [7], "e": [6] * 20, "d": [4] * 5, "r": 224})
    with pytest.raises(InputError, match=r"r: missing"):
        SubnetConfig.from_ofa({"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5})
    with pytest.raises(InputError, match=r"OFA config key 'w'|e\[|resolution: got 225"):
        SubnetConfig.from_ofa({"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5, "r": 225})


def test_restricted_resolutions_sample_only_those_and_encode_as_the_full_space():
    full, part = get_space("mbv3-tiny"), get_space("mbv3-tiny", resolutions=[32, 24])
    cfgs = part.sample_many(40, seed=0)
    assert {c.resolution for c in cfgs} == {24, 32}
    assert part.size() * 5 == full.size() * 2
    assert (part.encode(cfgs) == full.encode(cfgs)).all()
    with pytest.raises(InputError, match=r"resolutions: got \[33\], allowed: a non-empty subset of \{16, 20"):
        get_space("mbv3-tiny", resolutions=[33])
