"""`adfd train`: feature file -> model file (.safetensors) and a JSON training log beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from adfd_cli import options
from adfd_cli.choices import one_of
from adfd_cli.console import err, progress
from adfd_core.catalog import config_keys, model_names


def _pairs(values: list[str] | None, option: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in values or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise typer.BadParameter(f"expected key=value, got {item!r}", param_hint=option)
        pairs.append((key.strip(), value.strip()))
    return tuple(pairs)


def _check_config(model: str, overrides: tuple[tuple[str, str], ...]) -> None:
    """Usage errors for --set and --pretrained: a field the model lacks, or a value its config refuses."""
    def option(keys: list[str]) -> str:
        return "--pretrained" if keys == ["pretrained"] else "--set"

    for key, _ in overrides:
        if key not in config_keys(model):
            raise typer.BadParameter(f"{model} has no config field {key!r}; its fields: {', '.join(config_keys(model))}",
                                     param_hint=option([key]))
    if overrides:
        from adfd_core.models.config import ModelError
        from adfd_core.models.registry import make_config

        try:
            make_config(model, dict(overrides))
        except ModelError as exc:
            raise typer.BadParameter(str(exc), param_hint=option([key for key, _ in overrides])) from None


def train(
    features: Annotated[Path, typer.Argument(help="Training feature file (from `adfd featurize`).")],
    model: Annotated[
        str, typer.Option("--model", "-m", **one_of(model_names()), help="Registered model (see `adfd models`).")
    ] = "cnn.v1",
    output: Annotated[Path, typer.Option("--output", "-o", help="Model file to write (.safetensors).")] = Path("model.safetensors"),
    val: Annotated[
        Path | None,
        typer.Option("--val", help="Validation feature file; without it a group-disjoint tenth of the training file validates."),
    ] = None,
    feature: Annotated[
        str | None, typer.Option("--feature", "-f", help="Which feature of the file to train on (default: the only one, or the model's).")
    ] = None,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Most epochs to train.")] = 20,
    batch_size: options.BatchSize = 64,
    lr: Annotated[float, typer.Option("--lr", min=0.0, max=1.0, callback=options.finite, help="Adam learning rate.")] = 1e-3,
    weight_decay: Annotated[float, typer.Option("--weight-decay", min=0.0, max=1.0, callback=options.finite, help="Adam weight decay.")] = 0.0,
    cosine: Annotated[bool, typer.Option("--cosine", help="Cosine annealing of the learning rate over --epochs.")] = False,
    patience: Annotated[int, typer.Option("--patience", min=1, help="Stop after this many epochs without a better validation AUC.")] = 3,
    balanced: Annotated[bool, typer.Option("--balanced/--no-balanced", help="Class-balanced sampling of training segments.")] = True,
    balance_by: Annotated[
        str | None,
        typer.Option("--balance-by", metavar="FIELD", help="With --balanced, every value of FIELD (source, speaker, attack, or "
                     "any manifest column) weighs the same within its class, so that one large source does not stand for it."),
    ] = None,
    seed: options.Seed = 0,
    device: options.Device = "auto",
    workers: Annotated[int, typer.Option("--workers", min=0, help="DataLoader worker processes.")] = 0,
    amp: Annotated[bool, typer.Option("--amp/--no-amp", help="bf16 mixed precision on CUDA (no effect on CPU).")] = True,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Model config field, key=value, repeatable (see `adfd models --json`).")
    ] = None,
    pretrained: Annotated[
        str | None,
        typer.Option("--pretrained", help="Initial weights (the model's `pretrained` field): a vision model's ImageNet .pth file or "
                     "'imagenet' (torch cache); fdl.v1's ResNet-18 checkpoint; wavespec.v1's Wav2Vec2 folder or Hugging Face id; "
                     "whisper-probe.v1's start: a whisper-probe.v1 model file (architecture and weights; --set finetune_blocks=K)."),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", help="Leave out utterances whose FIELD equals VALUE (id, label, attack, speaker, group or a "
                     "manifest column such as source), and their group-mates; repeatable."),
    ] = None,
    augment: Annotated[
        bool,
        typer.Option("--augment", help="Waveform models: degrade every training utterance, of both classes, through a seeded chain of "
                     "codecs, band-limiting, noise, reverberation, gain with clipping and silence changes; recorded in the model file."),
    ] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Go on with the interrupted run whose checkpoint sits beside --output.")] = False,
    force: options.Force = False,
) -> int:
    """Train a detector on a feature file; the best epoch (validation AUC) is saved as one .safetensors file.

    Several GPUs: torchrun --nproc_per_node N -m adfd_cli train ... (DistributedDataParallel).
    """
    overrides = _pairs(set_, "--set") + ((("pretrained", pretrained),) if pretrained else ())  # usage errors before torch loads
    exclusions = _pairs(exclude, "--exclude")
    if balance_by is not None and not balanced:
        raise typer.BadParameter("needs --balanced (the default): --no-balanced draws rows without weights", param_hint="--balance-by")
    _check_config(model, overrides)

    import sys

    from adfd_core.outputs import check_output
    from adfd_core.training import TrainOptions, checkpoint_path, log_path
    from adfd_core.training import train as run_train

    for written in (output, checkpoint_path(output), log_path(output)):  # before the first epoch, not after it
        check_output(written, [features, val])

    opts = TrainOptions(model, feature, epochs, batch_size, lr, weight_decay, cosine, patience, balanced, seed, device,
                        workers, amp, overrides, exclusions, augment, balance_by)
    with progress() as bar:
        result = run_train(features, val, output, opts, resume=resume, force=force, command=list(sys.argv), observer=_EpochObserver(bar))
    if result.history:
        err.print(f"{result.output}: best epoch {result.best_epoch} of {len(result.history)}: "
                  f"validation AUC {result.best['val_auc']:.4f}, EER {result.best['val_eer']:.2f} %; log in {result.log_path}")
    return 0


class _EpochObserver:
    """A progress bar over each epoch's batches, and one line per finished epoch, on stderr."""

    def __init__(self, bar):
        self._bar = bar
        self._task = None

    def epoch_start(self, epoch: int, batches: int) -> None:
        if self._task is not None:
            self._bar.remove_task(self._task)
        self._task = self._bar.add_task(f"epoch {epoch}", total=batches)

    def batch_end(self, loss: float) -> None:
        self._bar.advance(self._task)

    def epoch_end(self, record) -> None:
        self._bar.console.print(
            f"epoch {record['epoch']}: loss {record['train_loss']:.4f}, val AUC {record['val_auc']:.4f}, "
            f"EER {record['val_eer']:.2f} %, {record['train_samples_per_s']:.0f} samples/s"
            + (" (best)" if record["best_epoch"] == record["epoch"] else "")
        )
