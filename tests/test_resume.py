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
"""A pre-training run killed with SIGKILL mid-epoch and started again continues as if it had never stopped."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BUNDLE = Path(__file__).resolve().parents[1] / "bundle"
RUN = """
import os, signal, sys
from ignite.engine import Events
from monai.bundle import ConfigWorkflow

root, kill_at = sys.argv[1], int(sys.argv[2])
workflow = ConfigWorkflow(config_file=r"{bundle}/configs/train.json", meta_file=r"{bundle}/configs/metadata.json",
                          workflow_type="train", bundle_root=root, epochs=3, backbone="resnet10", image_size=64,
                          num_workers=0, dataset_type="Dataset", **{{"synthetic#num": 64, "synthetic#num_val": 8,
                          "synthetic#size": 64}})
workflow.initialize()
if kill_at:
    workflow.trainer.add_event_handler(Events.ITERATION_COMPLETED(once=kill_at),
                                       lambda engine: os.kill(os.getpid(), signal.SIGKILL))
workflow.run()
print("finished at epoch", workflow.trainer.state.epoch, "iteration", workflow.trainer.state.iteration)
workflow.finalize()
"""


def _train(script: Path, root: Path, kill_at: int = 0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script), str(root), str(kill_at)], capture_output=True, text=True)


@pytest.mark.slow
def test_sigkilled_run_resumes_from_its_last_epoch_and_matches_an_uninterrupted_run(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(RUN.format(bundle=BUNDLE))
    uninterrupted = _train(script, tmp_path / "a")
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]

    killed = _train(script, tmp_path / "b", kill_at=6)  # 4 iterations per epoch: in the middle of epoch 2
    assert killed.returncode == -signal.SIGKILL
    checkpoints = sorted(p.name for p in (tmp_path / "b" / "models" / "checkpoints").iterdir())
    assert checkpoints == ["checkpoint_epoch=1.pt"]  # epoch 1 kept, nothing half-written
    resumed = _train(script, tmp_path / "b")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stderr + resumed.stdout
    assert "finished at epoch 3 iteration 12" in resumed.stdout

    final = {
        run: torch.load(tmp_path / run / "models" / "checkpoints" / "checkpoint_epoch=3.pt", weights_only=True)
        for run in ("a", "b")
    }
    for key in ("network", "optimizer", "lr_scheduler", "trainer"):
        assert final["a"][key].keys() == final["b"][key].keys()
    for name, value in final["a"]["network"].items():
        torch.testing.assert_close(final["b"]["network"][name], value, rtol=0, atol=0, msg=name)
    assert final["a"]["trainer"]["iteration"] == final["b"]["trainer"]["iteration"] == 12
    torch.testing.assert_close(final["b"]["random_states"]["torch"], final["a"]["random_states"]["torch"])
