"""Tests of benchmarks.wrk: parsing wrk's JSON summary and choosing the Lua script."""

from pathlib import Path

import pytest

from benchmarks.wrk import LUA_DIR, WrkError, WrkJob, parse_wrk_output, wrk_command

SAMPLE = """Running 5s test @ http://127.0.0.1:8000/json
  1 threads and 100 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.95ms  512.00us  33.11ms   95.00%
    Req/Sec    53.10k     2.00k   56.00k    80.00%
  266724 requests in 5.00s, 40.95MB read
Requests/sec:  53293.21
Transfer/sec:      8.18MB
WRK_JSON {"requests":266724,"duration_us":5004821,"bytes":42942564,"errors":{"connect":0,"read":1,"write":0,"status":3,"timeout":2},"latency_us":{"min":120,"mean":1950.0,"stdev":512.0,"max":33106,"p50":1804,"p90":2017,"p99":4571,"p999":27341}}
"""


def test_parse_wrk_output_reads_the_json_line() -> None:
    result = parse_wrk_output(SAMPLE)
    assert result.requests == 266724
    assert result.duration_s == pytest.approx(5.004821)
    assert result.rps == pytest.approx(266724 / 5.004821)
    assert result.latency_p50_ms == pytest.approx(1.804)
    assert result.latency_p90_ms == pytest.approx(2.017)
    assert result.latency_p99_ms == pytest.approx(4.571)
    assert result.latency_max_ms == pytest.approx(33.106)
    assert result.errors.read == 1
    assert result.errors.status == 3
    assert result.errors.timeout == 2
    assert result.errors.total == 6
    assert result.as_dict()["rps"] == pytest.approx(53293.2, rel=1e-3)


def test_parse_wrk_output_without_summary_raises() -> None:
    with pytest.raises(WrkError, match="WRK_JSON"):
        parse_wrk_output("Running 5s test\nunable to connect to 127.0.0.1:1\n")


def test_wrk_command_picks_the_script_from_the_inputs(tmp_path: Path) -> None:
    tokens, body, bodies = tmp_path / "t", tmp_path / "b", tmp_path / "bs"
    plain = wrk_command(WrkJob(url="http://h/x", duration_s=5, connections=50))
    assert plain[plain.index("-s") + 1] == str(LUA_DIR / "bearer.lua")
    assert plain[-2:] == ["-", "GET"]
    assert "-c50" in plain
    assert "-d5s" in plain

    bearer = wrk_command(WrkJob(url="http://h/x", tokens_file=tokens))
    assert bearer[-2:] == [str(tokens), "GET"]

    put = wrk_command(WrkJob(url="http://h/x", method="PUT", tokens_file=tokens, body_file=body))
    assert put[put.index("-s") + 1] == str(LUA_DIR / "bearer_body.lua")
    assert put[-3:] == [str(tokens), str(body), "PUT"]

    login = wrk_command(WrkJob(url="http://h/x", method="POST", bodies_file=bodies))
    assert login[login.index("-s") + 1] == str(LUA_DIR / "bodies.lua")
    assert login[-2:] == [str(bodies), "POST"]


def test_lua_scripts_exist() -> None:
    for name in ("common.lua", "bearer.lua", "bearer_body.lua", "bodies.lua"):
        assert (LUA_DIR / name).is_file()


def test_rows_use_the_rows_script_with_the_offset_file_and_threads(tmp_path: Path) -> None:
    job = WrkJob(
        url="http://127.0.0.1:1/",
        method="POST",
        threads=2,
        rows_file=tmp_path / "rows.txt",
        offset_file=tmp_path / "offset.txt",
    )
    cmd = wrk_command(job)
    assert cmd[cmd.index("-s") + 1] == str(LUA_DIR / "rows.lua")
    assert cmd[cmd.index("--") + 1 :] == [
        str(tmp_path / "rows.txt"),
        str(tmp_path / "offset.txt"),
        "POST",
        "2",
    ]
    with pytest.raises(ValueError, match="offset"):
        wrk_command(WrkJob(url="http://127.0.0.1:1/", rows_file=tmp_path / "rows.txt"))


def test_rows_with_a_body_file_pass_it_to_the_rows_script(tmp_path: Path) -> None:
    cmd = wrk_command(
        WrkJob(
            url="http://127.0.0.1:1/",
            method="POST",
            rows_file=tmp_path / "rows.txt",
            offset_file=tmp_path / "offset.txt",
            body_file=tmp_path / "body.json",
        )
    )
    assert cmd[cmd.index("-s") + 1] == str(LUA_DIR / "rows.lua")
    assert cmd[-3:] == ["POST", "1", str(tmp_path / "body.json")]
