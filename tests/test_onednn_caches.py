"""The bound on oneDNN's per-shape caches: set where the user left it unset, before the first oneDNN product."""

from __future__ import annotations

import pytest

from pytest_llmeval.models import onednn_caches
from pytest_llmeval.models.onednn_caches import CAPACITY, bound


def test_both_capacities_are_set_where_unset() -> None:
    env: dict[str, str] = {"PATH": "/bin", "LRU_CACHE_CAPACITY": ""}
    assert sorted(bound(env)) == ["LRU_CACHE_CAPACITY", "ONEDNN_PRIMITIVE_CACHE_CAPACITY"]
    assert env == {"PATH": "/bin", "LRU_CACHE_CAPACITY": str(CAPACITY), "ONEDNN_PRIMITIVE_CACHE_CAPACITY": str(CAPACITY)}
    assert bound(env) == []  # a second call changes nothing


@pytest.mark.parametrize("name", ["ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY"])
def test_a_users_primitive_cache_setting_is_kept(name: str) -> None:
    env = {name: "1024"}
    assert bound(env) == ["LRU_CACHE_CAPACITY"]
    assert env == {name: "1024", "LRU_CACHE_CAPACITY": str(CAPACITY)}


def test_a_users_lru_setting_is_kept() -> None:
    env = {"LRU_CACHE_CAPACITY": "2048"}
    assert bound(env) == ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"]
    assert env["LRU_CACHE_CAPACITY"] == "2048"


def test_the_onednn_probe_bounds_the_caches_before_its_product(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    from pytest_llmeval.models.cpu_kernels import onednn_checks_out

    if not torch.backends.mkldnn.is_available():
        pytest.skip("this torch has no oneDNN")
    order: list[str] = []
    real = torch.ops.mkldnn._linear_pointwise
    monkeypatch.setattr(onednn_caches, "bound", lambda: order.append("bound") or [])
    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", lambda *a: order.append("product") or real(*a))
    onednn_checks_out.cache_clear()
    try:
        onednn_checks_out()
    finally:
        onednn_checks_out.cache_clear()
    assert order[:2] == ["bound", "product"]
