"""Model files -> per-recording scores, from audio or from a feature file.

Each recording is cut into segments as its model's front-end was trained (the front-end is
rebuilt from the model file), segments are batched across files through each model, and a
recording's probability of spoof is the mean over its segments (the ensemble paper's eq. 1);
several models are fused by the mean of their probabilities (eq. 2). The per-segment timeline
is that of the first model's segmentation, averaged over the models that share it.
"""

from __future__ import annotations

import logging
import math
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from adfd_core import audio
from adfd_core.corpus import Utterance
from adfd_core.errors import AdfdError
from adfd_core.pipeline import FeaturePipeline, Observer, Silent
from adfd_core.provenance import digest, provenance

if TYPE_CHECKING:
    import torch

    from adfd_core.calibration import Calibration
    from adfd_core.modelfile import ModelFile
    from adfd_core.scoretable import ScoreTable
    from adfd_core.store import FeatureFile, StoredUtterance

log = logging.getLogger(__name__)

DEFAULT_MODEL_PACKAGE = "adfd_core.default_model"


class ScoringError(AdfdError):
    """Models that cannot score these inputs (no such model, no matching feature, nothing to score)."""


def default_model_paths() -> list[Path]:
    """The bundled default ensemble's model files (see the model card in the README and `adfd info`), in
    the order its calibration weighs them (name order without a calibration)."""
    folder = resources.files(DEFAULT_MODEL_PACKAGE)
    paths = sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".safetensors"))
    if not paths:
        raise ScoringError(f"the bundled default model is missing from {folder}; reinstall adfd or pass -m MODEL")
    calibration = default_calibration()
    if calibration is None:
        return paths
    by_name = {p.name: p for p in paths}
    if sorted(by_name) != sorted(calibration.members):
        raise ScoringError(f"the bundled default model in {folder} holds {', '.join(sorted(by_name))}, but its calibration "
                           f"weighs {', '.join(calibration.members)}; reinstall adfd or pass -m MODEL")
    return [by_name[name] for name in calibration.members]


def default_calibration() -> "Calibration | None":
    """The bundled default model's calibration and operating point (calibration.json), if it has one."""
    from adfd_core.calibration import Calibration

    path = resources.files(DEFAULT_MODEL_PACKAGE).joinpath("calibration.json")
    return Calibration.load(Path(str(path))) if path.is_file() else None


def default_model_card() -> str:
    """The bundled default model's card (Markdown): what it was trained on, its measured EER, its limits."""
    return resources.files(DEFAULT_MODEL_PACKAGE).joinpath("MODEL_CARD.md").read_text(encoding="utf-8")


class ScoringInterrupted(KeyboardInterrupt):
    """Ctrl-C while scoring; ``results`` holds the recordings finished before it (scored or failed), in input order."""

    def __init__(self, results: list["RecordingScore"], total: int):
        super().__init__(f"interrupted after {len(results)} of {total} recordings")
        self.results, self.total = results, total


@dataclass
class LoadedModel:
    """One model ready to score: the module on its device, what its file says, and its front-end's key."""

    path: Path
    module: "torch.nn.Module"
    info: "ModelFile"
    frontend_key: str  # equal for models whose front-ends give identical rows

    @property
    def sha256(self) -> str:
        return audio.file_sha256(self.path)


def frontend_key(spec: dict) -> str:
    """A digest of a front-end spec, ignoring the informational row_shape and, for a pre-trained
    network pinned by its weights_sha256, where its files lie (``model``). A spec written before a
    parameter was added has the same key as one that gives that parameter the value it means."""
    from adfd_core.frontends.registry import added_params

    params = {**added_params(spec["name"]), **spec["params"]}
    if params.get("weights_sha256"):
        params = {k: v for k, v in params.items() if k != "model"}
    return digest({**{k: v for k, v in spec.items() if k != "row_shape"}, "params": params})[:16]


def load_models(paths: Sequence[Path], device: "torch.device", networks: Mapping[str, str] | None = None) -> list[LoadedModel]:
    """Load each model file onto ``device`` in eval mode. ``networks`` (front-end name -> folder or
    Hugging Face repo id) moves where an embedding model's network is looked for; its weights
    must still be those the model was trained with (their sha256 is in the model file)."""
    from adfd_core.modelfile import load_model

    if not paths:
        raise ScoringError("no model files to score with")
    models = []
    for path in paths:
        module, info = load_model(path, device=str(device))
        name = info.frontend["name"]
        if networks and name in networks:
            frontend = {**info.frontend, "params": {**info.frontend["params"], "model": networks[name]}}
            info = dataclasses.replace(info, frontend=frontend)
        models.append(LoadedModel(Path(path), module.eval(), info, frontend_key(info.frontend)))
    return models


@dataclass
class RecordingScore:
    """One recording's outcome: p_spoof (NaN when it failed), its timeline, or why it failed.

    member_p: (M,) each model's mean probability of spoof over the segments; member_segments:
    (n_segments, K) the segment probabilities of the K models cut like the first one (the timeline).
    """

    utt: Utterance
    p_spoof: float = math.nan
    segments: list[tuple[float, float, float]] = field(default_factory=list)  # (start s, end s, p_spoof)
    error: str | None = None
    content_hash: str = ""  # sha256 of the audio file that was scored
    member_p: np.ndarray = field(default_factory=lambda: np.empty(0))
    member_segments: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))


def _segment_seconds(model: LoadedModel) -> float:
    return float(model.info.frontend["params"]["segment_seconds"])


class _Accumulator:
    """Per recording and model, the segment probabilities of spoof as they arrive; fused at the end."""

    def __init__(self, models: Sequence[LoadedModel]):
        self.models = models
        # Models cut into segments of the same length share the timeline (their spans are identical).
        self.timeline_models = [i for i, m in enumerate(models) if _segment_seconds(m) == _segment_seconds(models[0])]

    def fuse(self, stored: "StoredUtterance", n_samples: int, probs: dict[int, list[np.ndarray]]) -> RecordingScore:
        """eq. 1 per model, eq. 2 across models; the timeline from the models cut like the first one."""
        per_model = {i: np.concatenate(probs[i]) for i in range(len(self.models))}
        if not all(len(q) for q in per_model.values()):
            return RecordingScore(stored.utterance, error="no segments to score", content_hash=stored.content_hash)
        member_p = np.array([per_model[i].mean() for i in range(len(self.models))])
        if not np.isfinite(member_p).all():
            return RecordingScore(stored.utterance, error="the model's output is not finite (NaN or infinite feature values?)",
                                  content_hash=stored.content_hash)
        segment_samples = _segment_seconds(self.models[0]) * audio.TARGET_SR
        spans = audio.segment_spans(n_samples, round(segment_samples))
        member_segments = np.column_stack([per_model[i] for i in self.timeline_models])
        sr = audio.TARGET_SR
        timeline_s = [(a / sr, b / sr, float(q)) for (a, b), q in zip(spans, member_segments.mean(axis=1))]
        return RecordingScore(stored.utterance, float(member_p.mean()), timeline_s, content_hash=stored.content_hash,
                              member_p=member_p, member_segments=member_segments)


class _ScoringSink:
    """A RowSink for FeaturePipeline: runs the models over rows in batches across recordings; tells
    ``observer`` of each recording that the models could not give a finite score."""

    def __init__(self, models: Sequence[LoadedModel], device: "torch.device", batch_size: int, observer: Observer):
        self.models, self.device, self.batch_size, self.observer = models, device, batch_size, observer
        self.acc = _Accumulator(models)
        self.slot = 0  # the open recording
        self.pending: dict[str, list[tuple[int, np.ndarray]]] = {}
        self.probs: dict[int, dict[int, list[np.ndarray]]] = {}
        self.ended: list[tuple[int, "StoredUtterance"]] = []
        self.samples: dict[int, int] = {}
        self.done: dict[str, RecordingScore] = {}

    def add_rows(self, key: str, rows: np.ndarray) -> None:
        self.pending.setdefault(key, []).append((self.slot, rows))
        if sum(len(r) for _, r in self.pending[key]) >= self.batch_size:
            self._run(key)

    def end_utterance(self, stored: "StoredUtterance") -> None:
        self.ended.append((self.slot, stored))
        self.samples[self.slot] = round(stored.duration_s * audio.TARGET_SR)
        self.slot += 1

    def discard_utterance(self) -> None:
        for key in self.pending:
            self.pending[key] = [(s, r) for s, r in self.pending[key] if s != self.slot]
        self.probs.pop(self.slot, None)

    def add_failure(self, utt_id: str, path: str, reason: str) -> None:
        pass  # the pipeline's own list of failures is read after the run

    def end_batch(self) -> None:
        for key in list(self.pending):
            self._run(key)
        for slot, stored in self.ended:
            result = self.acc.fuse(stored, self.samples.pop(slot), self.probs.pop(slot))
            if result.error:
                self.observer.failed(result.utt, result.error)
            self.done[stored.utterance.id] = result
        self.ended.clear()

    def _run(self, key: str) -> None:
        import torch

        batch, self.pending[key] = self.pending[key], []
        if not batch:
            return
        x = torch.from_numpy(np.concatenate([r for _, r in batch])).to(self.device)
        bounds = np.cumsum([len(r) for _, r in batch])[:-1]
        for i, model in enumerate(self.models):
            if model.frontend_key != key:
                continue
            with torch.inference_mode():
                p_spoof = model.module(x).float().softmax(dim=1)[:, 0].cpu().numpy()
            for (slot, _), part in zip(batch, np.split(p_spoof, bounds)):
                self.probs.setdefault(slot, {}).setdefault(i, []).append(part)


def score_audio(
    utterances: Sequence[Utterance],
    models: Sequence[LoadedModel],
    device: "torch.device",
    batch_size: int = 64,
    jobs: int = 1,
    observer: Observer | None = None,
) -> list[RecordingScore]:
    """Score recordings from their audio, in input order; failures come back with ``error`` set.
    Ctrl-C raises ScoringInterrupted with the recordings finished so far."""
    from adfd_core.frontends import from_spec

    frontends = {}
    for m in models:
        frontends.setdefault(m.frontend_key, from_spec(m.info.frontend).to(device).eval())
    observer = observer or Silent()
    sink = _ScoringSink(models, device, batch_size, observer)
    observer.start(len(utterances), 0)
    pipeline = FeaturePipeline(frontends, device, sink, batch_size, jobs, observer)
    try:
        pipeline.run(utterances)
    except KeyboardInterrupt:
        failed = {utt_id: reason for utt_id, _, reason in pipeline.failures}
        finished = [sink.done.get(u.id) or RecordingScore(u, error=failed[u.id]) for u in utterances
                    if u.id in sink.done or u.id in failed]
        raise ScoringInterrupted(finished, len(utterances)) from None
    failed = {utt_id: reason for utt_id, _, reason in pipeline.failures}
    return [sink.done.get(u.id) or RecordingScore(u, error=failed.get(u.id, "not scored")) for u in utterances]


def score_features(path: Path, models: Sequence[LoadedModel], device: "torch.device", batch_size: int = 256,
                   observer: Observer | None = None) -> list[RecordingScore]:
    """Score every recording of a feature file from its stored rows; each model needs a feature made
    with exactly its front-end spec (a waveform model: the stored whole waveform, cut into its
    windows). The inputs that featurize could not read come last, with their error; ``observer``
    hears of them and of recordings without a finite score."""
    from adfd_core.store import FeatureFile

    observer = observer or Silent()
    with FeatureFile(path) as ff:
        if ff.provenance.get("augment"):
            log.warning("%s: holds %d degraded copies of each utterance, made for training; each copy is scored as "
                        "a recording of its own", path, ff.provenance["augment"]["copies"])
        sources = {m.frontend_key: _stored_rows(ff, m) for m in models}
        stored = ff.utterances()
        failed = [RecordingScore(Utterance(f["id"], Path(f["path"]), "unknown"), error=f["reason"]) for f in ff.failures()]
        observer.start(len(stored), 0)
        for result in failed:
            observer.failed(result.utt, result.error or "")
        sink = _ScoringSink(models, device, batch_size, observer)
        try:
            for index, s in enumerate(stored):
                for key, rows_of in sources.items():
                    sink.add_rows(key, rows_of(index))
                sink.end_utterance(s)
                if index % 64 == 63:
                    sink.end_batch()
                    observer.advance(64)
            sink.end_batch()
            observer.advance(len(stored) % 64)
        except KeyboardInterrupt:
            finished = [sink.done[s.utterance.id] for s in stored if s.utterance.id in sink.done]
            raise ScoringInterrupted(finished, len(stored) + len(failed)) from None
    return [sink.done[s.utterance.id] for s in stored] + failed


def _stored_rows(ff: "FeatureFile", model: LoadedModel) -> Callable[[int], np.ndarray]:
    """Utterance index -> the rows ``model`` scores, from the feature of ``ff`` its front-end made."""
    spec = model.info.frontend
    for name, f in ff.features.items():
        if not f.whole_utterance and frontend_key(f.spec) == model.frontend_key:
            return lambda index: ff.rows(name, index)
    if spec["name"] == "wave":
        window = round(spec["params"]["segment_seconds"] * spec["params"]["sample_rate"])
        for name, f in ff.features.items():
            same = (f.spec["name"], f.spec["version"], f.spec["params"]["sample_rate"]) == (
                "wave", spec["version"], spec["params"]["sample_rate"])
            if f.whole_utterance and same:
                return lambda index: audio.segments(ff.rows(name, index), window)[:, None, None, :]
    raise ScoringError(
        f"{ff.path}: holds no feature made with {model.path}'s front-end ({spec['name']} with its parameters); "
        f"featurize with -f {spec['name']} or score the audio"
    )


def to_table(results: Sequence[RecordingScore], models: Sequence[LoadedModel], segments: bool = False,
             command: list[str] | None = None, calibration: "Calibration | None" = None,
             threshold: float | None = None, identity: str | None = None) -> "ScoreTable":
    """The score table of ``results``: score, p_spoof, decision, labels; ``error`` for failures;
    ``segments`` ("start-end:p_spoof;...") with ``segments=True``; its provenance, among it
    ``inputs_sha256``, a digest of every recording's id and audio sha256, and ``identity`` (see ``table_identity``).

    Without ``calibration``: p_spoof is the mean of the models' probabilities and the score its
    log-odds. With it: the score is the calibrated LLR of the models' log-odds scores, p_spoof its
    posterior at the calibration's prior, and each segment of the timeline is calibrated the same
    way. ``decision`` is spoof where score < ``threshold`` (default: the calibration's, else 0).
    """
    from adfd_core.scoretable import ScoreTable, log_odds

    if calibration is not None:
        member = np.array([r.member_p if r.error is None else np.full(len(models), np.nan) for r in results])
        scores = calibration.llr(log_odds(member.reshape(len(results), len(models))))
        p = calibration.p_spoof(scores)
        threshold = calibration.threshold if threshold is None else threshold
    else:
        p = np.array([r.p_spoof for r in results], dtype=np.float64)
        scores = log_odds(p)
    extra: dict[str, list[str]] = {}
    if any(r.error for r in results):
        extra["error"] = [r.error or "" for r in results]
    if segments:
        extra["segments"] = [_timeline(r, calibration) for r in results]
    inputs = digest(sorted((r.utt.id, r.content_hash) for r in results))
    made = provenance(
        command=command, models=[{"path": str(m.path), "model": m.info.name, "sha256": m.sha256} for m in models],
        inputs_sha256=inputs, identity=identity, **({"calibration": calibration.describe()} if calibration is not None else {}),
    )
    return ScoreTable.build(
        [r.utt.id for r in results], scores, p_spoof=p, paths=[str(r.utt.path) for r in results],
        labels=[r.utt.label for r in results], attacks=[r.utt.attack for r in results], extra=extra, provenance=made,
        threshold=0.0 if threshold is None else threshold,
    )


def _timeline(result: RecordingScore, calibration: "Calibration | None") -> str:
    """"start-end:p_spoof;..." of one recording; with a calibration, each segment's calibrated posterior."""
    from adfd_core.scoretable import log_odds

    spans = [(a, b) for a, b, _ in result.segments]
    if calibration is not None and result.member_segments.shape[1] == len(calibration.weights):
        p = calibration.p_spoof(calibration.llr(log_odds(result.member_segments)))
    else:
        p = np.array([q for _, _, q in result.segments])
    return ";".join(f"{a:.2f}-{b:.2f}:{q:.4f}" for (a, b), q in zip(spans, p))


def table_identity(models: Sequence[LoadedModel], utterances: Sequence[Utterance] = (), features: Path | None = None) -> str:
    """A digest of what a score table is made from: the models' bytes and the recordings (each id and
    path, and standard input's bytes) or the feature file. A table is replaced only by one of the same
    identity, unless forced (``adfd_core.sidecar.check_replaceable``)."""
    from adfd_core.stdin_audio import STDIN, stdin_sha256

    made_from = {
        "models": [m.sha256 for m in models],
        "inputs": [(u.id, str(u.path)) for u in utterances],
        "features": str(Path(features).resolve()) if features is not None else None,
    }
    if any(u.path == STDIN for u in utterances):
        made_from["stdin_sha256"] = stdin_sha256()
    return digest(made_from)
