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
"""medslip-monai: MeDSLIP dual-stream language-image pre-training for chest X-rays, as a MONAI bundle plugin."""

__version__ = "0.1.0"

import importlib

__all__ = [
    "apps",
    "assets",
    "checkpoint",
    "cli",
    "data",
    "engines",
    "errors",
    "grounding",
    "losses",
    "metrics",
    "networks",
    "reporting",
    "reports",
    "text",
    "utils",
    "visualize",
    "vocab",
    "__version__",
]


def __getattr__(name: str):
    """Import subpackages on first use, so light tools (``reports``) do not load torch and MONAI."""
    if name in __all__:
        return importlib.import_module(f"medslip_monai.{name}")
    raise AttributeError(f"module 'medslip_monai' has no attribute {name!r}")
