"""Fixtures for every test module."""

from __future__ import annotations

import pytest

from neurosim.compiled import arrays


@pytest.fixture(autouse=True)
def bfloat16_cpu(tmp_path_factory, monkeypatch):
    """A CPU that lists bfloat16 instructions, whatever this one lists: the tests check
    the numbers of bfloat16 products, which torch gives on any CPU (emulated where the
    instructions are missing); the refusal of such a CPU is tested on fake
    ``/proc/cpuinfo`` files (tests/test_torch_backend.py)."""
    path = tmp_path_factory.getbasetemp() / "cpuinfo_bf16"
    path.write_text("flags\t\t: fpu avx512f avx512_bf16\n")
    monkeypatch.setattr(arrays, "CPUINFO", str(path))
