"""The training loop: a feature file -> a model file.

Segment models train on the file's feature rows; waveform models (``input_kind`` "wave") on
random crops of its whole waveforms, with the extra labels they ask for (adfd_core.wavedata),
optionally through seeded channel degradations (adfd_core.channel) applied to both classes.
Adam (optionally with cosine annealing) on class-balanced batches, minimizing the model's own
``training_loss(batch)`` where it has one and cross-entropy otherwise; validation at the
recording level after every epoch (the mean of its segments' or windows' probabilities, the
ensemble paper's eq. 1: AUC and EER), early stopping on validation AUC, and the best epoch's
weights saved as a self-describing model file. bf16 autocast on CUDA. After every epoch the whole state
(weights, optimizer, RNG, history) goes to a checkpoint beside the output, so ``resume`` goes on
from the last finished epoch and, on CPU, ends with the weights an uninterrupted run ends with.

Several processes (``torchrun --nproc_per_node N``) train with DistributedDataParallel: each
takes its share of every epoch's batches; rank 0 validates, decides on stopping and writes files.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from adfd_core.channel import ChannelAugment
from adfd_core.errors import AdfdError
from adfd_core.models.weights import held_state, load_into
from adfd_core.trainset import (
    BalancedEpochSampler, SegmentRows, augmented_copies, check_compatible, choose_feature, input_statistics, load_rows,
    row_strata,
)
from adfd_core.wavedata import KeyedSampler, TrainingCrops, WaveRows, load_waves, synthesizer_names

Rows = SegmentRows | WaveRows  # segment rows for "segments" models, waveforms for "wave" models

log = logging.getLogger(__name__)


class TrainError(AdfdError):
    """Training cannot start or go on: bad options, a checkpoint in the way, or no usable validation set."""


@dataclass(frozen=True)
class TrainOptions:
    """Everything that shapes a training run. overrides: ``--set key=value`` pairs for the model config."""

    model: str
    feature: str | None = None
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    cosine: bool = False
    patience: int = 3
    balanced: bool = True
    seed: int = 0
    device: str = "auto"
    workers: int = 0
    amp: bool = True
    overrides: tuple[tuple[str, str], ...] = ()
    exclude: tuple[tuple[str, str], ...] = ()  # (field, value): utterances left out of training and validation
    augment: bool = False  # waveform models: channel degradations (adfd_core.channel) on every training utterance
    balance_by: str | None = None  # an utterance field (source, speaker, ...) whose values share each class equally

    def identity(self) -> dict[str, Any]:
        """The options a resumed run must share with the interrupted one (not where or how fast it runs)."""
        return {k: v for k, v in asdict(self).items() if k not in ("device", "workers", "epochs")}


class TrainObserver(Protocol):
    """Progress hooks; the command line shows them on stderr."""

    def epoch_start(self, epoch: int, batches: int) -> None: ...
    def batch_end(self, loss: float) -> None: ...
    def epoch_end(self, record: Mapping[str, Any]) -> None: ...


class _Silent:
    def epoch_start(self, epoch: int, batches: int) -> None:
        pass

    def batch_end(self, loss: float) -> None:
        pass

    def epoch_end(self, record: Mapping[str, Any]) -> None:
        pass


@dataclass
class TrainResult:
    """Where the model went, and how the run went: per-epoch history, best epoch and its metrics."""

    output: Path
    log_path: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False


def checkpoint_path(output: Path) -> Path:
    """``cnn.safetensors`` -> ``cnn.ckpt.safetensors``: the resumable state of an unfinished run."""
    return output.with_name(f"{_stem(output)}.ckpt.safetensors")


def log_path(output: Path) -> Path:
    """``cnn.safetensors`` -> ``cnn.train.json``: the training log beside the model file."""
    return output.with_name(f"{_stem(output)}.train.json")


def _stem(output: Path) -> str:
    return output.name[: -len(".safetensors")] if output.name.endswith(".safetensors") else output.name


# --------------------------------------------------------------------------- processes and devices


@dataclass(frozen=True)
class _Processes:
    """This process's place in a torchrun job (rank 0 of 1 when run alone)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _processes() -> _Processes:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return _Processes()
    return _Processes(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def _device(name: str, procs: _Processes) -> torch.device:
    from adfd_core.devices import resolve_device

    device = resolve_device(name)
    if device.type == "cuda" and procs.world > 1:
        device = torch.device("cuda", procs.local_rank)
        torch.cuda.set_device(device)
    return device


# --------------------------------------------------------------------------- data


def _datasets(train_path: Path, val_path: Path | None, options: TrainOptions, config: Any) -> tuple[Rows, Rows]:
    """The training and validation data of the model: segment rows, or waveforms cropped to its input."""
    from adfd_core.models import registry

    e = registry.entry(options.model)
    wave = e.input_kind == "wave"
    if wave:
        from adfd_core.audio import TARGET_SR

        crop = round(config.crop_seconds * TARGET_SR)
        load = lambda path, feature: load_waves(path, feature, crop, options.exclude)  # noqa: E731
    else:
        load = lambda path, feature: load_rows(path, feature, options.exclude)  # noqa: E731
    feature = choose_feature(train_path, options.feature, e.default_feature, whole_utterance=wave)
    train = load(train_path, feature)
    if val_path is None:
        return _hold_out(train_path, train, options.seed)
    val = load(val_path, choose_feature(val_path, feature, None, whole_utterance=wave))
    check_compatible(train, val)
    return train, val


def _hold_out(path: Path, rows: Rows, seed: int, fraction: float = 0.1) -> tuple[Rows, Rows]:
    """Without --val: a group-disjoint tenth of the training utterances validates."""
    from adfd_core.splits import split_utterances
    from adfd_core.store import FeatureFile

    with FeatureFile(path) as ff:
        utts = [s.utterance for s in ff.utterances() if s.utterance.label != "unknown"]
    val_ids = {u.id for u in split_utterances(utts, val=fraction, test=0.0, seed=seed)["val"]}
    in_val = torch.tensor([utt_id in val_ids for utt_id in rows.utt_ids])
    val = rows.subset(in_val)
    if len(set(val.recording_labels().tolist())) < 2:
        raise TrainError(f"{path}: the held-out tenth has only one class; give a validation file with --val")
    log.info("no --val: validating on %d held-out utterances of %s (grouped by utterance group)", len(val.utt_ids), path)
    return rows.subset(~in_val), val


# --------------------------------------------------------------------------- model


def _config(options: TrainOptions) -> Any:
    """The model config from the paper's defaults and ``--set`` overrides (and, for a model that starts from
    a model file, that file's architecture), before it is fitted to the data."""
    from adfd_core.models import registry

    config = registry.make_config(options.model, dict(options.overrides))
    from_start = getattr(config, "from_start", None)  # a model that starts from a model file takes its architecture from it
    return from_start({key for key, _ in options.overrides}) if from_start else config


def _model(options: TrainOptions, config: Any, train: Rows) -> tuple[torch.nn.Module, Any]:
    """The model for ``config`` fitted to the training data: its input shape, its synthesizer names and,
    for segment models, the rows' input statistics. Returns the model and the config it was built with."""
    from adfd_core.models import registry

    config_fields = {f.name for f in fields(registry.entry(options.model).config_cls)}
    fitted: dict[str, Any] = {}
    if "input_shape" in config_fields and isinstance(train, SegmentRows):
        fitted["input_shape"] = tuple(train.x.shape[1:])
    if "synthesizers" in config_fields:
        fitted["synthesizers"] = synthesizer_names(train.utt_attacks, train.recording_labels())
    config = dataclasses.replace(config, **fitted)
    model = registry.build(options.model, config)
    if isinstance(getattr(model, "config", None), type(config)):
        config = model.config  # a model may complete its config (e.g. the pre-trained encoder's architecture)
    if isinstance(train, SegmentRows):
        model.set_input_statistics(*input_statistics(train.x, tuple(model.mean.shape)))
    return model, config


def adam(params: list[torch.nn.Parameter], lr: float, weight_decay: float, device: torch.device) -> torch.optim.Adam:
    """Adam, fused where the device has the fused kernel (CPU, CUDA): a step holds nothing beyond the two
    moments, where the default (foreach) holds about one more copy of the weights during a step (315 M
    parameters: 5.5 against 6.7 GB peak), and it runs several times faster on the CPU (2.9 against 14 s)."""
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=device.type in ("cpu", "cuda"))


class _Objective(torch.nn.Module):
    """The training loss as a module's forward, so DistributedDataParallel sees the backward pass:
    the model's own ``training_loss(batch)`` where it has one, else cross-entropy on its logits."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        if hasattr(self.model, "training_loss"):
            return self.model.training_loss(batch)
        return F.cross_entropy(self.model(batch["x"]).float(), batch["y"]), {}


# --------------------------------------------------------------------------- evaluation


def recording_scores(model: torch.nn.Module, rows: Rows, device: torch.device, batch_size: int, amp: bool) -> np.ndarray:
    """Per recording, ln(P(bona fide) / P(spoof)) of the mean probability over its segments (or
    windows): (n_utterances,) float64."""
    model.eval()
    n = len(rows.utt_ids)
    p_sum = torch.zeros(n, dtype=torch.float64)
    count = torch.zeros(n, dtype=torch.float64)
    with torch.inference_mode(), _autocast(device, amp):
        for x, utt in rows.test_batches(batch_size):
            p_bona = model(x.to(device, non_blocking=True)).float().softmax(dim=1)[:, 1].double().cpu()
            p_sum.index_add_(0, utt, p_bona)
            count.index_add_(0, utt, torch.ones_like(p_bona))
    p = (p_sum / count).clamp(1e-12, 1 - 1e-12).numpy()
    return np.log(p) - np.log1p(-p)


def validation_metrics(scores: np.ndarray, rows: Rows) -> dict[str, float]:
    """AUC and EER (%) of recording scores against the recordings' labels."""
    from adfd_core import metrics

    labels = rows.recording_labels().numpy()
    bona, spoof = scores[labels == 1], scores[labels == 0]
    eer, threshold = metrics.eer(bona, spoof)
    return {"val_auc": float(metrics.auc(bona, spoof)), "val_eer": 100.0 * float(eer), "val_eer_threshold": float(threshold)}


def _autocast(device: torch.device, amp: bool):
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp and device.type == "cuda")


# --------------------------------------------------------------------------- the loop


class _Run:
    """One training run's state; the pieces a checkpoint saves and restores."""

    def __init__(self, options: TrainOptions, config: Any, train: Rows, val: Rows, procs: _Processes, device: torch.device):
        self.options, self.train_rows, self.val_rows, self.procs, self.device = options, train, val, procs, device
        torch.manual_seed(options.seed)
        self.model, self.config = _model(options, config, train)
        self.model.to(device)
        self.net = _Objective(self.model)
        if procs.world > 1:
            self.net = torch.nn.parallel.DistributedDataParallel(self.net, device_ids=[device.index] if device.type == "cuda" else None)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = adam(trainable, options.lr, options.weight_decay, device)
        self.scheduler = (
            torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=options.epochs) if options.cosine else None
        )
        strata = None
        if options.balance_by is not None:
            row_utt = train.utt if isinstance(train, SegmentRows) else torch.arange(len(train))
            strata = row_strata(train.path, train.utt_ids, row_utt, options.balance_by)
        sampler = BalancedEpochSampler(train.y, options.batch_size, options.seed, options.balanced, procs.rank, procs.world, strata)
        if isinstance(train, WaveRows):
            self.sampler, self.dataset = KeyedSampler(sampler), TrainingCrops(
                train, options.seed, procs.rank, getattr(self.model, "batch_fields", ()), getattr(self.config, "synthesizers", ()),
                channel=ChannelAugment() if options.augment else None, augment=getattr(self.model, "input_augmentation", None),
            )
        else:
            self.sampler, self.dataset = sampler, train
        self.epoch = 0  # epochs finished
        self.history: list[dict[str, Any]] = []
        self.best_state: dict[str, torch.Tensor] = {}
        self.best_epoch, self.best_auc = 0, -math.inf

    def state(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "model": held_state(self.model),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "history": self.history,
            "best_state": self.best_state,
            "best_epoch": self.best_epoch,
            "best_auc": self.best_auc,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        load_into(self.model, state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.history = state["epoch"], state["history"]
        self.best_state, self.best_epoch, self.best_auc = state["best_state"], state["best_epoch"], state["best_auc"]

    def train_epoch(self, observer: TrainObserver) -> tuple[float, dict[str, float], int]:
        """One pass over this process's batches: (mean loss, mean of each loss part, samples seen by this process)."""
        from torch.utils.data import DataLoader

        self.sampler.set_epoch(self.epoch)
        # Dropout draws from a stream fixed by (seed, epoch, rank): different on every rank, and the
        # same whether or not the run was interrupted before this epoch.
        torch.manual_seed(self.options.seed * 100_003 + self.epoch * 1_009 + self.procs.rank)
        loader = DataLoader(
            self.dataset, batch_sampler=self.sampler, collate_fn=_as_batch, num_workers=self.options.workers,
            pin_memory=self.device.type == "cuda",
        )
        self.net.train()
        total, seen = 0.0, 0
        parts_total: dict[str, float] = {}
        observer.epoch_start(self.epoch + 1, len(self.sampler))
        for batch in loader:
            batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
            with _autocast(self.device, self.options.amp):
                loss, parts = self.net(batch)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            n = len(batch["y"])
            total += float(loss.detach()) * n
            for name, value in parts.items():
                parts_total[name] = parts_total.get(name, 0.0) + float(value) * n
            seen += n
            observer.batch_end(float(loss.detach()))
        if self.scheduler:
            self.scheduler.step()
        return total / max(seen, 1), {k: v / max(seen, 1) for k, v in parts_total.items()}, seen

    def validate(self) -> dict[str, float]:
        scores = recording_scores(self.model, self.val_rows, self.device, self.options.batch_size * 2, self.options.amp)
        return validation_metrics(scores, self.val_rows)


def _as_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return batch  # the datasets' __getitems__ already return a stacked batch


def train(
    train_path: Path,
    val_path: Path | None,
    output: Path,
    options: TrainOptions,
    resume: bool = False,
    force: bool = False,
    command: list[str] | None = None,
    observer: TrainObserver | None = None,
) -> TrainResult:
    """Train ``options.model`` on ``train_path`` and write the best epoch to ``output``; see the module docstring."""
    from adfd_core.checkpoint import load_checkpoint, save_checkpoint

    observer = observer or _Silent()
    output = Path(output)
    ckpt = checkpoint_path(output)
    if ckpt.exists() and not (resume or force):
        raise TrainError(f"{ckpt}: an interrupted run's checkpoint is in the way; add --resume to go on with it, or --force to start over")
    if resume and not ckpt.exists():
        raise TrainError(f"{ckpt}: no checkpoint to resume from")
    if output.exists() and not (force or resume):
        raise TrainError(f"{output}: exists; use --force to overwrite it")
    if options.augment:
        from adfd_core.models import registry

        if registry.entry(options.model).input_kind != "wave":
            raise TrainError(f"--augment degrades waveforms while training; {options.model} trains on precomputed rows: "
                             "featurize its training file with --augment-copies instead")
    procs = _processes()
    if procs.world > 1 and not torch.distributed.is_initialized():
        from datetime import timedelta

        backend = "nccl" if torch.cuda.is_available() and options.device != "cpu" else "gloo"
        # The other ranks wait while rank 0 validates and checkpoints: allow a long validation.
        torch.distributed.init_process_group(backend, timeout=timedelta(hours=2))
    try:
        device = _device(options.device, procs)
        config = _config(options)
        train_rows, val_rows = _datasets(train_path, val_path, options, config)
        run = _Run(options, config, train_rows, val_rows, procs, device)
        identity = {"options": options.identity(), "train": train_rows.sha256, "val": val_rows.sha256}
        if resume:
            state = load_checkpoint(ckpt)
            if state.get("identity") != json.loads(json.dumps(identity)):
                raise TrainError(f"{ckpt}: was made with other options or feature files; use --force to start over")
            run.restore(state["run"])
            log.info("resuming after epoch %d of %d", run.epoch, options.epochs)
        result = TrainResult(output, log_path(output))
        _loop(run, result, identity, ckpt, observer, save_checkpoint)
        if procs.main:
            _write_outputs(run, result, train_rows, val_rows, command)
            ckpt.unlink(missing_ok=True)
        return result
    finally:
        if procs.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _loop(run: _Run, result: TrainResult, identity: dict, ckpt: Path, observer: TrainObserver, save_checkpoint) -> None:
    """Epochs until the last or until validation AUC has not improved for ``patience`` epochs; fills ``result``."""
    opts, procs = run.options, run.procs
    stopped = False
    while run.epoch < opts.epochs and not stopped:
        start = time.perf_counter()
        loss, parts, seen = run.train_epoch(observer)
        seconds = time.perf_counter() - start
        run.epoch += 1
        stop = torch.zeros(1, device=run.device)  # rank 0's decision, broadcast to the others
        if procs.main:
            record = {"epoch": run.epoch, "train_loss": loss, **{f"train_{k}": v for k, v in parts.items()},
                      "lr": run.optimizer.param_groups[0]["lr"], "train_seconds": seconds,
                      "train_samples_per_s": seen * procs.world / seconds, **run.validate()}
            if record["val_auc"] > run.best_auc or not run.best_state:
                run.best_auc, run.best_epoch = record["val_auc"], run.epoch
                run.best_state = {k: v.cpu().clone() for k, v in held_state(run.model).items()}
            record["best_epoch"] = run.best_epoch
            run.history.append(record)
            stop[0] = float(run.epoch - run.best_epoch >= opts.patience)
            save_checkpoint(ckpt, {"identity": identity, "run": run.state()})
            observer.epoch_end(record)
        if procs.world > 1:
            torch.distributed.broadcast(stop, src=0)
        stopped = bool(stop[0])
    best = next((r for r in run.history if r["epoch"] == run.best_epoch), {})
    result.history, result.best_epoch = run.history, run.best_epoch
    result.best = {k: best[k] for k in ("val_auc", "val_eer") if k in best}
    result.stopped_early = stopped and run.epoch < opts.epochs


def _scoring_frontend(run: _Run, train: Rows) -> dict:
    """The front-end spec the model file records for `score`: the training rows' own, or for a waveform
    model the waveform cut into windows of its input length."""
    if isinstance(train, SegmentRows):
        return train.spec
    from adfd_core import frontends

    params = {**train.spec["params"], "segment_seconds": float(run.config.crop_seconds)}
    return frontends.from_spec({**train.spec, "params": params}).spec.to_dict()


def _pretrained_record(config: Any) -> dict[str, Any] | None:
    """What the config's ``pretrained`` field names, with the file's sha256 where it is a file (None for a folder or hub id)."""
    from adfd_core.audio import file_sha256

    name = getattr(config, "pretrained", None)
    if name is None:
        return None
    path = Path(name).expanduser()
    return {"name": name, "sha256": file_sha256(path) if path.is_file() else None}


def _write_outputs(run: _Run, result: TrainResult, train: Rows, val: Rows, command: list[str] | None) -> None:
    """The best epoch's model file and the JSON training log."""
    from adfd_core.modelfile import ModelFile, save_model
    from adfd_core.models.registry import config_to_dict
    from adfd_core.outputs import atomic_text
    from adfd_core.provenance import provenance

    load_into(run.model, run.best_state)
    channel = getattr(run.dataset, "channel", None)
    summary = {
        **provenance(command),
        "train": {**train.summary(), "augmented_copies": augmented_copies(train.path)},
        "val": {**val.summary(), "augmented_copies": augmented_copies(val.path)},
        "augment": channel.describe() if channel is not None else None,
        "options": asdict(run.options),
        "config": config_to_dict(run.config),
        "pretrained": _pretrained_record(run.config),
        "epochs_run": run.epoch,
        "best_epoch": result.best_epoch,
        **result.best,
        "stopped_early": result.stopped_early,
        "processes": run.procs.world,
        "device": str(run.device),
        "amp": "bf16" if run.options.amp and run.device.type == "cuda" else "off",
    }
    info = ModelFile(name=run.options.model, config=run.config, frontend=_scoring_frontend(run, train), training=summary, calibration=None, extra={})
    save_model(result.output, run.model.cpu(), info)
    with atomic_text(result.log_path) as log_file:
        log_file.write(json.dumps({**summary, "history": result.history}, indent=2, default=str) + "\n")
