"""The oldest versions CI tests (.ci/minimum-versions.txt) are the floors pyproject.toml declares."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def release(version: str) -> tuple[int, ...]:
    """A release number without its trailing zeros: "3.1" and "3.1.0" are the same release."""
    numbers = [int(part) for part in version.split(".")]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()
    return tuple(numbers)


def test_minimum_versions_are_the_declared_floors():
    project = (ROOT / "pyproject.toml").read_text().split("[project]\n", 1)[1]  # not the build system's
    floors = {name.lower(): release(v) for name, v in re.findall(r'"([A-Za-z0-9_.-]+)>=([0-9.]+)"', project)}
    pins = {}
    for line in (ROOT / ".ci" / "minimum-versions.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.strip().lower()] = release(version.strip())
    assert {name: pins.get(name) for name in floors} == floors
