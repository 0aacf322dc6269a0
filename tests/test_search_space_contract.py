"""Every registered search space passes the contract shipped in `search_spaces.testing` (sample -> validate ->
encode -> supernet forward -> extract -> ONNX -> onnxruntime, with outputs equal at every step)."""
from __future__ import annotations

import pytest

from search_spaces import family_of, list_spaces
from search_spaces.testing import SearchSpaceContract

# the mbv3 family's own contract (Once-for-All format, stages); every family: tests/test_family_contract.py
SPACES = [s for s in list_spaces() if family_of(s).family == "mbv3"]


class TestRegisteredSpaces(SearchSpaceContract):
    @pytest.fixture(scope="class", params=SPACES)
    @classmethod
    def space_name(cls, request) -> str:
        return request.param


def test_float_extraction_keeps_the_quantization_policy(tiny_space):
    net = tiny_space.build_supernet()
    c = tiny_space.sample(3)
    while not any(a < 32 for a in c.act_bits):
        c = tiny_space.sample(int(c.resolution) + len(c.kernel))
    fq, fl = net.extract(c), net.extract(c, fake_quant=False)
    assert fq.quant_policy() == fl.quant_policy()
    assert any(a < 32 for _, a in fl.quant_policy().values())
    assert not any(m.__class__.__name__ == "FixedActQuant" for m in fl.modules())
