"""The builds comparison: how builds are named and how rounds are summarized."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.builds import Round, Summary, parse_build, summarize


def test_a_build_is_a_tree_and_its_variables() -> None:
    build = parse_build("OFF=.:RATE_LIMIT_ENABLED=false,WORKERS=1")
    assert build.name == "OFF"
    assert build.tree == Path(".").resolve()
    assert build.env == {"RATE_LIMIT_ENABLED": "false", "WORKERS": "1"}
    assert parse_build("NEW=/tmp/wt/new").env == {}


@pytest.mark.parametrize("spec", ["NEW", "=.", "NEW=", "NEW=.:NOVALUE"])
def test_a_malformed_build_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="expected"):
        parse_build(spec)


def test_rounds_are_summarized_by_median_and_paired_by_index() -> None:
    rounds = {
        "BASE": [Round(100, 70, 1.5), Round(200, 72, 1.6), Round(150, 90, 1.4)],
        # Round by round 10 % faster than BASE, whatever the background load did.
        "NEW": [Round(110, 68, 1.2), Round(220, 69, 1.3), Round(165, 80, 1.1)],
    }
    base, new = summarize(rounds)
    assert base == Summary("BASE", 150, 1.0, 72, 1.5)
    assert new.name == "NEW"
    assert new.rps == 165
    assert new.ratio == pytest.approx(1.1)
    assert (new.server_us, new.redis_us) == (69, 1.2)
