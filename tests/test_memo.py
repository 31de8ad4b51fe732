"""IdentityMemo: values by the identity of their object, the oldest dropped first."""

import pytest

from pytest_llmeval.memo import IdentityMemo


def test_a_value_is_given_back_for_its_own_object_only() -> None:
    memo = IdentityMemo(4)
    a, b = {"x": 1}, {"x": 1}  # equal, not the same
    assert memo.put(a, "A") == "A"
    assert memo.get(a) == "A" and memo.get(b) is None and memo.get(b, default=0) == 0
    assert memo.get(a, key="other") is None
    memo.put(a, "A2", key="other")
    assert memo.get(a) == "A" and memo.get(a, key="other") == "A2"


def test_the_oldest_entry_goes_first() -> None:
    memo = IdentityMemo(2)
    objs = [object() for _ in range(3)]
    for i, o in enumerate(objs):
        memo.put(o, i)
    assert memo.get(objs[0]) is None and memo.get(objs[1]) == 1 and memo.get(objs[2]) == 2


def test_an_unhashable_key_raises_type_error() -> None:
    with pytest.raises(TypeError):
        IdentityMemo(2).get(object(), key=(["stop"],))
