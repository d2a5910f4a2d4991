"""The wheel carries the server alone: `server`, `actors` and `schemas`, not the harness."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path

from tests.support.live_server import ROOT


def test_the_wheel_carries_no_benchmarks(tmp_path: Path) -> None:
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is needed to build the wheel"
    subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert not [name for name in names if name.startswith("benchmarks/")]
    packages = {name.split("/", 1)[0] for name in names if "/" in name}
    assert {"server", "actors", "schemas"} <= packages
