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
"""Process-level CPU settings."""

import subprocess
import sys

import pytest


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning exists on Linux only")
def test_allocator_tuning_applies_on_linux_and_training_still_runs():
    code = (
        "import torch; from medslip_monai.utils import tune_cpu_allocator; assert tune_cpu_allocator(); "
        "x = torch.randn(64, 1024, 1024, requires_grad=True); (x * 2).sum().backward(); print(float(x.grad.mean()))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "2.0"
