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
"""MONAI Label tasks for MeDSLIP (``pip install ".[label]"``; the app is ``apps/monailabel/main.py``).

Three infer tasks share the bundle's preprocessing (``configs/inference.json``):

* :class:`FindingsInferTask` (classification): zero-shot probabilities of the annotation classes.
* :class:`GroundingInferTask` (segmentation): a label map of the findings called present, each where its grounding
  heat map reaches its threshold (thresholds chosen on validation by ``configs/evaluate.json`` when given).
* :class:`SegmentationInferTask` (segmentation): the fine-tuned ``MeDSLIPUNet``.

:class:`SegmentationTrainTask` fine-tunes that network on the label maps annotators saved (``final`` tag), running
``configs/finetune_segmentation.json`` with the datastore as its datalist, and replaces the served weights with
the run's best validation checkpoint. Label maps are single-channel PNGs: 0 background, ``k + 1`` class ``k``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import tempfile
import time
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from fastapi import HTTPException
from monai.bundle import ConfigWorkflow
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.infer_v2 import InferType
from monailabel.interfaces.tasks.train import TrainTask
from monailabel.tasks.infer.basic_infer import BasicInferTask
from PIL import Image

from medslip_monai.apps.assist import (
    SEGMENTATION_CONFIGS,
    FindingsModel,
    SegmentationModel,
    label_map,
    label_values,
    read_thresholds,
)
from medslip_monai.data.readers import follow_display
from medslip_monai.locations import places_text, top_places

__all__ = ["FindingsInferTask", "GroundingInferTask", "SegmentationInferTask", "SegmentationTrainTask"]

logger = logging.getLogger(__name__)


def _write_label_map(labels: torch.Tensor) -> str:
    """A label map ``[H, W]`` as a grey PNG in a temporary file (MONAI Label returns and then removes it)."""
    handle, path = tempfile.mkstemp(suffix=".png", prefix="medslip_")
    os.close(handle)
    Image.fromarray(labels.numpy().astype(np.uint8)).save(path)
    return path


class _MeDSLIPInferTask(BasicInferTask):
    """What the three tasks share: a model built from the bundle per device and rebuilt when its weights file
    changes (after a training run), the bundle's preprocessing as pre-transforms, a 2D label map or scores out."""

    def __init__(self, weights: str, classes: Sequence[str], type: str, description: str, labels: Any) -> None:
        super().__init__(
            path=weights, network=None, type=type, labels=labels, dimension=2, description=description, load_strict=True
        )
        self.classes = list(classes)
        self._models: dict[str, tuple[float, Any]] = {}

    @abstractmethod
    def build(self, device: str) -> Any:
        """The model (from :mod:`medslip_monai.apps.assist`) for ``device``, built from the current weights."""

    def model(self, device: str) -> Any:
        weights = self.get_path()
        if weights is None:
            raise FileNotFoundError(f"{self.description}: no weights at {self.path[-1]}")
        stamp = os.path.getmtime(weights)
        cached = self._models.get(str(device))
        if cached is None or cached[0] != stamp:
            cached = self._models[str(device)] = (stamp, self.build(device))
        return cached[1]

    def pre_transforms(self, data=None) -> Sequence[Any]:
        if self.get_path() is None:
            raise HTTPException(
                status_code=404, detail=f"{self.description}: no weights at {self.path[-1]} yet (train it first)"
            )
        return list(self.model(str((data or {}).get("device", "cpu"))).transforms.transforms)

    def run_pre_transforms(self, data: dict[str, Any], transforms: Sequence[Any]) -> dict[str, Any]:
        """The bundle's reader names the file and the problem of an unreadable input: answer 422 with it."""
        try:
            return super().run_pre_transforms(data, transforms)
        except (ValueError, FileNotFoundError) as e:
            raise HTTPException(status_code=422, detail=f"cannot use the image: {e}") from e

    def inferer(self, data=None) -> Any:
        return None  # run_inferer calls the model itself

    def post_transforms(self, data=None) -> Sequence[Any]:
        return []

    def writer(self, data: dict[str, Any], extension=None, dtype=None) -> tuple[Any, Any]:
        return _write_label_map(data["pred"]), data["result"]


class FindingsInferTask(_MeDSLIPInferTask):
    """Zero-shot findings: ``{"prediction": [{"idx", "label", "score"}, ...]}`` plus each class's threshold and
    whether it is called present; a present finding also gets ``where`` (its three most likely places with their
    shares, empty when its map points nowhere) and ``location`` (the same as text).

    Args:
        bundle_root: the bundle folder.
        classes: entity names to report.
        model_file: pre-trained weights; defaults to ``<bundle_root>/models/model.pt``.
        thresholds_file: ``configs/evaluate.json``'s ``metrics.json`` (validation-chosen thresholds), or None for 0.5.
    """

    heat = False  # the scores need no heat maps at the image's size
    infer_type = InferType.CLASSIFICATION
    summary = "MeDSLIP zero-shot findings (research use only)"

    def __init__(
        self,
        bundle_root: str,
        classes: Sequence[str],
        model_file: str | None = None,
        thresholds_file: str | None = None,
    ) -> None:
        self.bundle_root = bundle_root
        self.thresholds = read_thresholds(thresholds_file, classes)
        weights = str(model_file or Path(bundle_root) / "models" / "model.pt")
        super().__init__(weights, classes, self.infer_type, self.summary, self.label_names(classes))

    @staticmethod
    def label_names(classes: Sequence[str]) -> Any:
        """MONAI Label's ``labels`` of the task: the class names."""
        return list(classes)

    def build(self, device: str) -> FindingsModel:
        return FindingsModel(self.bundle_root, self.classes, self.get_path(), device)

    def run_inferer(self, data: dict[str, Any], convert_to_batch=True, device="cuda") -> dict[str, Any]:
        output = self.model(str(device))(data["image"], heat=self.heat)
        data["probabilities"], data["locations"] = output["probabilities"], output["locations"]
        if self.heat:
            data["heat"] = follow_display(output["heat"], data["image"])  # back to the stored image's layout
        return data

    def writer(self, data: dict[str, Any], extension=None, dtype=None) -> tuple[Any, Any]:
        rows = []
        for k, (name, p, t) in enumerate(
            zip(self.classes, data["probabilities"].tolist(), self.thresholds["classification"])
        ):
            row = {"idx": k, "label": name, "score": float(p), "threshold": t, "present": bool(p >= t)}
            if row["present"]:
                row["where"] = top_places(data["locations"][k])
                row["location"] = places_text(row["where"])
            rows.append(row)
        return None, {"prediction": rows}


class GroundingInferTask(FindingsInferTask):
    """Zero-shot grounding as a label map at the image's size: pixel ``k + 1`` where finding ``k`` is called present
    and its heat map reaches the finding's grounding threshold (the highest heat wins where findings overlap)."""

    heat = True
    infer_type = InferType.SEGMENTATION
    summary = "MeDSLIP zero-shot grounding: heat maps thresholded per finding (research use only)"

    @staticmethod
    def label_names(classes: Sequence[str]) -> Any:
        """The label map's values: ``k + 1`` for class ``k``."""
        return label_values(classes)

    def writer(self, data: dict[str, Any], extension=None, dtype=None) -> tuple[Any, Any]:
        _, result = super().writer(data)
        present = torch.tensor([row["present"] for row in result["prediction"]])
        labels = label_map(data["heat"], self.thresholds["grounding"], present)
        return _write_label_map(labels), result


class SegmentationInferTask(_MeDSLIPInferTask):
    """The fine-tuned segmentation network: pixel ``k + 1`` where class ``k``'s probability is at least
    ``threshold`` (the highest wins where classes overlap).

    Args:
        bundle_root: the bundle folder (``configs/finetune_segmentation.json``).
        weights: fine-tuned weights (the train task writes here).
        classes: the classes they were fine-tuned on.
        pretrained_model: the MeDSLIP model whose settings the encoder has; defaults to the bundle's.
        threshold: probability threshold. Defaults to 0.5 (the config's validation rule).
    """

    def __init__(
        self,
        bundle_root: str,
        weights: str,
        classes: Sequence[str],
        pretrained_model: str | None = None,
        threshold: float = 0.5,
    ) -> None:
        self.bundle_root, self.pretrained_model, self.threshold = bundle_root, pretrained_model, threshold
        super().__init__(
            weights,
            classes,
            InferType.SEGMENTATION,
            "MeDSLIP fine-tuned segmentation (research use only)",
            label_values(classes),
        )

    def build(self, device: str) -> SegmentationModel:
        return SegmentationModel(self.bundle_root, self.get_path(), self.pretrained_model, self.classes, device)

    def run_inferer(self, data: dict[str, Any], convert_to_batch=True, device="cuda") -> dict[str, Any]:
        probabilities = follow_display(self.model(str(device))(data["image"]), data["image"])  # the stored layout
        data["pred"] = label_map(probabilities, self.threshold)
        data["result"] = {"pixels": {name: int((data["pred"] == k + 1).sum()) for k, name in enumerate(self.classes)}}
        return data


class SegmentationTrainTask(TrainTask):
    """Fine-tune the segmentation network on the annotators' ``final`` label maps with the bundle's
    ``configs/finetune_segmentation.json`` and serve the best validation checkpoint.

    The labelled images are shuffled with ``seed`` and ``val_split`` of them (at least one) validate; the run folder
    ``<weights folder>/runs/<time>_<random>`` keeps the datalist, checkpoints and metrics. With ``pretrained``
    (default) the network starts from the weights being served, when there are any; otherwise from the MeDSLIP
    encoder.

    Args:
        bundle_root: the bundle folder.
        weights: where the served weights are (replaced atomically after a run).
        classes: the annotation classes (label value ``k + 1`` = class ``k``).
        pretrained_model: the MeDSLIP model for the encoder; defaults to the bundle's.
    """

    def __init__(
        self, bundle_root: str, weights: str, classes: Sequence[str], pretrained_model: str | None = None
    ) -> None:
        super().__init__("Fine-tune MeDSLIP segmentation on the saved label maps")
        self.bundle_root, self.weights, self.classes = str(bundle_root), Path(weights), list(classes)
        self.pretrained_model = str(pretrained_model or Path(bundle_root) / "models" / "model.pt")

    def config(self) -> dict[str, Any]:
        return {
            "max_steps": 150,
            "validations": 4,
            "val_split": 0.2,
            "batch_size": 8,
            "learning_rate": 3e-4,
            "pretrained": True,
            "seed": 0,
            "device": "cuda" if torch.cuda.is_available() else "cpu",
        }

    def _split(self, items: list[dict[str, str]], val_split: float, seed: int) -> dict[str, list[dict[str, str]]]:
        if len(items) < 2:
            raise ValueError(
                f"training needs at least 2 images with final labels (one validates); the datastore has {len(items)}"
            )
        items = sorted(items, key=lambda item: item["image"])
        random.Random(seed).shuffle(items)
        held = min(len(items) - 1, max(1, round(val_split * len(items))))
        return {"training": items[held:], "validation": items[:held], "test": items[:held]}

    def __call__(self, request: dict[str, Any], datastore: Datastore) -> dict[str, Any]:
        settings = {**self.config(), **{k: v for k, v in request.items() if k in self.config()}}
        splits = self._split(datastore.datalist(), float(settings["val_split"]), int(settings["seed"]))
        (self.weights.parent / "runs").mkdir(parents=True, exist_ok=True)
        run_dir = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d_%H%M%S_"), dir=self.weights.parent / "runs"))
        (run_dir / "datalist.json").write_text(json.dumps(splits, indent=1))
        overrides = {
            "bundle_root": self.bundle_root,
            "datalist": str(run_dir / "datalist.json"),
            "classes": self.classes,
            "pretrained_model": self.pretrained_model,
            "label_fraction": 1.0,
            "seed": int(settings["seed"]),
            "max_steps": int(settings["max_steps"]),
            "validations": int(settings["validations"]),
            "batch_size": int(settings["batch_size"]),
            "learning_rate": float(settings["learning_rate"]),
            "device": f"$torch.device('{settings['device']}')",
            "num_workers": 0,
            "dataset_type": "Dataset",
            "resume": False,
            "ckpt_dir": str(run_dir),
            "output_dir": str(run_dir / "eval"),
            "label_decoding": [
                {
                    "_target_": "medslip_monai.data.DecodeFindingMasksd",
                    "keys": "label",
                    "num_findings": len(self.classes),
                    "encoding": "indices",
                }
            ],
            "run": ["$@train#trainer.run()"],
        }
        workflow = ConfigWorkflow(
            config_file=[str(Path(self.bundle_root) / "configs" / name) for name in SEGMENTATION_CONFIGS],
            workflow_type="train",
            **overrides,
        )
        if settings["pretrained"] and self.weights.is_file():
            handlers = workflow.parser["train#handlers"]
            handlers.insert(
                0,
                {
                    "_target_": "CheckpointLoader",
                    "load_path": str(self.weights),
                    "strict": True,
                    "load_dict": {"model": "@network"},
                    "map_location": "cpu",
                },
            )
            workflow.parser["train#handlers"] = handlers
        workflow.initialize()
        workflow.run()
        best = workflow.parser.get_parsed_content("validate#evaluator").state.best_metric
        workflow.finalize()
        if not (run_dir / "model.pt").is_file():
            raise RuntimeError(f"the run in {run_dir} saved no checkpoint: validation never produced a Dice score")
        self.weights.parent.mkdir(parents=True, exist_ok=True)
        staged = self.weights.with_suffix(".tmp")
        shutil.copyfile(run_dir / "model.pt", staged)
        os.replace(staged, self.weights)
        logger.info("served segmentation weights replaced by %s (validation Dice %.4f)", run_dir / "model.pt", best)
        return {
            "model": str(self.weights),
            "run": str(run_dir),
            "best_validation_dice": float(best),
            "training_images": len(splits["training"]),
            "validation_images": len(splits["validation"]),
        }
