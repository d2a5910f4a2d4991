"""The `sevenp` command's parts that need no running service."""

from __future__ import annotations

import sys

import pytest

from server.cli import main


def test_bench_without_the_harness_says_to_run_it_from_a_checkout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # An installed wheel has no `benchmarks` package; None in sys.modules makes it unimportable.
    monkeypatch.setitem(sys.modules, "benchmarks", None)
    monkeypatch.delitem(sys.modules, "benchmarks.runner", raising=False)
    assert main(["bench", "--help"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "checkout" in error
