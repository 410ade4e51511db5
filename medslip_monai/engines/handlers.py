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
"""Ignite handlers: loss terms in the engine output, resumable runs, metric files and provenance."""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import random
import re
import time
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import ignite.distributed as idist
import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.engines.utils import IterationEvents
from monai.handlers import CheckpointLoader, CheckpointSaver
from monai.transforms import Compose, Randomizable

from medslip_monai.cli import flag
from medslip_monai.reporting import markdown_table, write_json, write_report

__all__ = [
    "BroadcastBuffers",
    "MetricsWriter",
    "ProvenanceWriter",
    "RandomStates",
    "RequireBatches",
    "ResumableCheckpoint",
    "TrainingScalarsHandler",
    "latest_checkpoint",
]

logger = logging.getLogger(__name__)


class TrainingScalarsHandler:
    """After every loss, add the loss terms (``loss/<term>``) and the learning rate (``lr``) to the trainer output.

    Stats and TensorBoard handlers then log them through :func:`~medslip_monai.engines.training_scalars`.

    Args:
        loss_function: a loss exposing ``last_terms`` (such as :class:`~medslip_monai.losses.MeDSLIPLoss`).
        optimizer: the optimizer whose first group's learning rate is reported; optional.
    """

    def __init__(self, loss_function: Any, optimizer: torch.optim.Optimizer | None = None) -> None:
        self.loss_function = loss_function
        self.optimizer = optimizer

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(IterationEvents.LOSS_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        engine.state.output.update({f"loss/{name}": value for name, value in self.loss_function.last_terms.items()})
        if self.optimizer is not None:
            engine.state.output["lr"] = self.optimizer.param_groups[0]["lr"]


_EPOCH_FILE = re.compile(r"epoch=(\d+)\.pt$")


def latest_checkpoint(directory: str | Path, prefix: str = "checkpoint") -> Path | None:
    """The ``<prefix>*_epoch=N.pt`` file with the largest N in ``directory``, or None."""
    found = []
    for path in Path(directory).glob(f"{prefix}*epoch=*.pt"):
        match = _EPOCH_FILE.search(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return max(found)[1] if found else None


class RandomStates:
    """The random number generator states a run depends on, as a checkpointable object.

    ``state_dict`` holds the states of torch (CPU, and every CUDA device when there is one), NumPy's and Python's
    global generators and the private generator of every randomised transform of ``data_loader``'s dataset (MONAI
    transforms each draw from their own ``RandomState``). Restored, a resumed run draws the same shuffles, dropout
    masks and augmentations as a run that was never stopped (exactly so with ``num_workers=0``; with worker
    processes each epoch's workers are reseeded from the restored torch state, unless they are persistent).
    Everything is stored as tensors and plain numbers, so the checkpoint still loads with ``weights_only=True``.
    """

    def __init__(self, data_loader: Any = None) -> None:
        self.data_loader = data_loader

    def _transforms(self) -> list:
        transform = getattr(getattr(self.data_loader, "dataset", None), "transform", None)
        if transform is None:
            return []
        flat = transform.flatten().transforms if isinstance(transform, Compose) else (transform,)
        return [t for t in flat if isinstance(t, Randomizable)]

    @staticmethod
    def _numpy_state(state: tuple) -> dict:
        return {
            "keys": torch.from_numpy(state[1].astype(np.int64)),
            "pos": int(state[2]),
            "has_gauss": int(state[3]),
            "gauss": float(state[4]),
        }

    @staticmethod
    def _numpy_tuple(state: Mapping) -> tuple:
        keys = state["keys"].numpy().astype(np.uint32)
        return "MT19937", keys, state["pos"], state["has_gauss"], state["gauss"]

    def state_dict(self) -> dict:
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": self._numpy_state(np.random.get_state()),
            "python": random.getstate(),
            "transforms": [self._numpy_state(t.R.get_state()) for t in self._transforms()],
        }

    def load_state_dict(self, state: Mapping) -> None:
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
        np.random.set_state(self._numpy_tuple(state["numpy"]))
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
        transforms = self._transforms()
        if len(transforms) != len(state["transforms"]):
            logger.warning(
                "checkpoint has %d transform generators, the pipeline %d: their states are not restored",
                len(state["transforms"]),
                len(transforms),
            )
            return
        for transform, saved in zip(transforms, state["transforms"]):
            transform.R.set_state(self._numpy_tuple(saved))


class ResumableCheckpoint:
    """Save every finished epoch and resume from the newest one when the same run starts again.

    Attached to a trainer, it saves ``objects`` plus the trainer's own state (epoch, iteration) and the random
    generator states (:class:`RandomStates`) to ``checkpoint_epoch=N.pt`` in ``directory`` after each epoch (MONAI
    :class:`~monai.handlers.CheckpointSaver`: written to a temporary file and renamed, on rank 0 only under
    ``torch.distributed``, keeping the newest ``n_saved``) and, if such a file already exists when attached, loads
    the newest one as the run starts (MONAI :class:`~monai.handlers.CheckpointLoader`: ``weights_only=True``,
    strict). A run killed at any point, even by SIGKILL, therefore loses at most the epoch in progress. The trainer
    is taken from the engine it is attached to, so the config needs no reference from the trainer's handlers back
    to the trainer.

    Args:
        directory: checkpoint folder.
        objects: what to save and restore besides the trainer, e.g. network, optimizer and lr scheduler.
        resume: load the newest checkpoint if there is one. Defaults to True.
        n_saved: epoch checkpoints kept. Defaults to 1.
    """

    def __init__(self, directory: str | Path, objects: dict, resume: bool = True, n_saved: int = 1) -> None:
        self.directory = Path(directory)
        self.objects = dict(objects)
        self.resume = flag(resume, "resume")
        self.n_saved = n_saved

    def attach(self, engine: Engine) -> None:
        state = {**self.objects, "trainer": engine, "random_states": RandomStates(getattr(engine, "data_loader", None))}
        newest = latest_checkpoint(self.directory) if self.resume else None
        if newest is not None:
            logger.info("resuming from %s", newest)
            saved = torch.load(newest, map_location="cpu", weights_only=True, mmap=True)
            if "random_states" not in saved:  # written before random states were saved
                logger.warning("%s holds no random generator states; resuming without them", newest)
            load = {key: value for key, value in state.items() if key in saved or key != "random_states"}
            CheckpointLoader(load_path=str(newest), load_dict=load, map_location="cpu").attach(engine)
        CheckpointSaver(
            save_dir=str(self.directory), save_dict=state, save_interval=1, n_saved=self.n_saved, epoch_level=True
        ).attach(engine)


def _nest(flat: Mapping[str, float]) -> dict:
    """``{"auc/effusion": 0.9}`` -> ``{"auc": {"effusion": 0.9}}``."""
    nested: dict = {}
    for key, value in flat.items():
        node = nested
        *parents, leaf = key.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        if isinstance(node.get(leaf), dict):  # a mapping metric stored under the same name: keep the children
            continue
        node[leaf] = value
    return nested


def _scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, (int, float)):
            out[key] = float(value)
    return out


class RequireBatches:
    """Refuse a trainer whose data loader yields no batch (a list smaller than one batch, with ``drop_last``),
    naming the sizes, when attached (MONAI's workflows would otherwise skip the run with a warning and finish
    without a model)."""

    def attach(self, engine: Engine) -> None:
        loader = engine.data_loader
        if len(loader) == 0:
            sampler = getattr(loader, "sampler", None)  # this rank's share under torch.distributed
            size = len(sampler) if sampler is not None else len(getattr(loader, "dataset", ()))
            batch = getattr(loader, "batch_size", "?")
            raise ValueError(f"the training list has {size} item(s), fewer than one batch of {batch}: lower batch_size")


class BroadcastBuffers:
    """At the start of each evaluation, copy rank 0's buffers (batch-norm statistics) of a DDP network to every rank.

    DDP's own forward does this on its first no-grad call after training; evaluators that call the wrapped
    module's ``predict`` (:class:`~medslip_monai.engines.PredictionInferer`) bypass that forward, so this handler
    does it once per run, when every rank is at the same point. Nothing happens outside ``torch.distributed`` or
    when the network does not broadcast buffers.

    Args:
        network: the (DDP-wrapped) network the evaluator runs.
    """

    def __init__(self, network: torch.nn.Module) -> None:
        self.network = network

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine) -> None:
        network = self.network
        if not isinstance(network, torch.nn.parallel.DistributedDataParallel) or not network.broadcast_buffers:
            return
        for buffer in network.module.buffers():
            torch.distributed.broadcast(buffer, src=0)


class MetricsWriter:
    """Write ``metrics.json`` and ``metrics.md`` into ``output_dir`` after each evaluation.

    The files describe the best evaluation so far by the engine's key metric (the one whose network weights the
    key-metric ``CheckpointSaver`` keeps) and, under ``"last"``, the most recent one; they also record the number
    of images evaluated and the ``config`` given.

    Args:
        output_dir: destination folder.
        config: the settings to record beside the metrics (any JSON-serialisable mapping).
        title: heading of ``metrics.md``.
    """

    def __init__(self, output_dir: str | Path, config: Mapping | None = None, title: str = "Evaluation") -> None:
        self.output_dir = Path(output_dir)
        self.config = dict(config or {})
        self.title = title
        self.best: dict | None = None

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    @idist.one_rank_only()
    def __call__(self, engine: Engine) -> None:
        flat = _scalar_metrics(engine.state.metrics)
        record = {
            "epoch": int(engine.state.epoch),
            "num_images": len(engine.data_loader.dataset) if hasattr(engine.data_loader, "dataset") else None,
            "metrics": _nest(flat),
        }
        if self.best is None or getattr(engine.state, "best_metric_epoch", -1) == engine.state.epoch:
            self.best, self._best_flat = record, flat
        summary = {
            **self.best,
            "key_metric": getattr(engine.state, "key_metric_name", None) or next(iter(engine.state.metrics), None),
            "last": record,
            "config": self.config,
            "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        rows = [[key, value, flat.get(key, float("nan"))] for key, value in self._best_flat.items()]
        heading = [f"# {self.title}", "", f"Best epoch {summary['epoch']} on {summary['num_images']} images.", ""]
        write_report(self.output_dir, summary, heading + markdown_table(["metric", "best", "last"], rows))


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


class ProvenanceWriter:
    """When training completes, write ``<model>.json`` beside the model file: hash, versions and settings.

    Args:
        model_file: the weights file to describe (usually ``models/model.pt``).
        config: settings to record (any JSON-serialisable mapping).
        evaluator: the validation evaluator whose best epoch the weights are (recorded as ``selected_epoch``).
    """

    def __init__(self, model_file: str | Path, config: Mapping | None = None, evaluator: Engine | None = None) -> None:
        self.model_file = Path(model_file)
        self.config = dict(config or {})
        self.evaluator = evaluator

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    @idist.one_rank_only()
    def __call__(self, engine: Engine) -> None:
        if not self.model_file.is_file():
            logger.warning("no %s to describe; provenance not written", self.model_file)
            return
        record = {
            "file": self.model_file.name,
            "sha256": hashlib.sha256(self.model_file.read_bytes()).hexdigest(),
            "config": self.config,
            "config_sha256": hashlib.sha256(json.dumps(self.config, sort_keys=True, default=str).encode()).hexdigest(),
            "epochs_trained": int(engine.state.epoch),
            "selected_epoch": getattr(getattr(self.evaluator, "state", None), "best_metric_epoch", None),
            "versions": {
                "python": platform.python_version(),
                **{p: _version(p) for p in ("medslip-monai", "torch", "monai", "pytorch-ignite", "transformers")},
            },
            "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        write_json(self.model_file.with_suffix(".json"), record)
