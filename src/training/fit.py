"""One training fit: compile, callbacks (checkpoint, EMA, batch-norm, early stop, time limit), fit."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from src.config import TrainConfig
from src.training.batch_norm import recalibration_callback
from src.training.checkpoint import BEST_FILENAME, checkpoint_callbacks, read_state, restore
from src.training.dataset import SketchData, build_training_sequence, soft_targets

logger = logging.getLogger(__name__)


def _compile(model, config: TrainConfig, steps_per_epoch: int) -> None:  # type: ignore[no-untyped-def]
    """Adam with cosine decay, sparse cross-entropy, top-1 and top-3 accuracy."""
    import keras

    schedule = keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=max(config.epochs * steps_per_epoch, 1), alpha=0.02
    )
    # Soft targets: one-hot for known drawings, uniform for outliers (outlier exposure).
    model.compile(
        optimizer=keras.optimizers.Adam(
            schedule, use_ema=config.ema_momentum > 0, ema_momentum=config.ema_momentum
        ),
        loss=keras.losses.CategoricalCrossentropy(),
        metrics=[
            keras.metrics.CategoricalAccuracy(name="accuracy"),
            keras.metrics.TopKCategoricalAccuracy(k=3, name="top3"),
        ],
    )


def time_limit_callback(max_minutes: float):  # type: ignore[no-untyped-def]
    """A callback that ends training once another epoch would cross ``max_minutes``.

    The next epoch is assumed to last as long as the slowest so far, so a run given a time
    budget ends inside it, with the last epoch's checkpoint ready for ``--resume``.
    """
    import keras

    class TimeLimit(keras.callbacks.Callback):  # type: ignore[misc]
        def on_train_begin(self, logs=None) -> None:  # type: ignore[no-untyped-def]
            self.started = time.perf_counter()
            self.slowest = 0.0

        def on_epoch_begin(self, epoch, logs=None) -> None:  # type: ignore[no-untyped-def]
            self.epoch_started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None) -> None:  # type: ignore[no-untyped-def]
            now = time.perf_counter()
            self.slowest = max(self.slowest, now - self.epoch_started)
            if now - self.started + self.slowest > max_minutes * 60:
                logger.info(
                    "time limit of %.1f minutes: stopping after epoch %d (resumable)",
                    max_minutes,
                    epoch + 1,
                )
                self.model.stop_training = True

    return TimeLimit()


def fit_model(  # type: ignore[no-untyped-def]
    model, data: SketchData, config: TrainConfig, directory: Path, replicas: int = 1
) -> dict:
    """Run fit with early stopping, a best-checkpoint and a resumable checkpoint per epoch.

    ``directory``: the checkpoint folder; with ``config.resume`` the run continues from the
    state there. Returns the Keras history dict of every epoch, resumed ones included.
    ``replicas``: devices sharing each batch; every batch (the last one of an epoch and the
    validation batches included) then holds a multiple of it, so each device gets an equal part.
    """
    import keras

    sequence = build_training_sequence(
        data,
        config.batch_size,
        config.seed,
        config.workers,
        augment=config.augment,
        outlier_weight=config.outlier_weight,
        batch_multiple=replicas,
    )
    _compile(model, config, len(sequence))
    state = read_state(directory) if config.resume else None
    if state is not None:
        restore(model, directory, state)
        sequence.start_at_epoch(state["epochs_done"])
    best_checkpoint = keras.callbacks.ModelCheckpoint(
        str(directory / BEST_FILENAME), monitor="val_accuracy", mode="max", save_best_only=True
    )
    # The best model on disk is what train() evaluates and ships, so no in-memory copy is kept.
    early_stopping = keras.callbacks.EarlyStopping(
        monitor="val_accuracy", mode="max", patience=config.patience
    )
    save_weights, save_state = checkpoint_callbacks(
        directory, state, early_stopping, best_checkpoint
    )
    # First: the raw weights are saved before SwapEMAWeights swaps the average in.
    callbacks = [save_weights, keras.callbacks.TerminateOnNaN()]
    # With a weight average, it is swapped in before validation and at each epoch's end, so the
    # batch-norm recalibration, the checkpoint and early stopping all see the averaged weights.
    if config.ema_momentum > 0:
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    # Before each validation: batch-norm statistics of the current weights, not of the
    # weights of the last ~100 steps (see src/training/batch_norm.py).
    callbacks += [
        recalibration_callback(lambda index: sequence[index][0], len(sequence)),
        best_checkpoint,
        early_stopping,
    ]
    if config.max_minutes > 0:
        callbacks.append(time_limit_callback(config.max_minutes))
    callbacks.append(save_state)
    validation = data.validation
    # A multiple of the replicas, so the last validation batch splits evenly too.
    kept = len(validation.labels) - len(validation.labels) % replicas
    model.fit(
        sequence,
        validation_data=(
            validation.as_float()[:kept],
            soft_targets(validation.labels[:kept], len(data.class_names)),
        ),
        validation_batch_size=config.batch_size,
        epochs=config.epochs,
        initial_epoch=state["epochs_done"] if state else 0,
        # The sequence shuffles by (seed, epoch) itself; Keras's own shuffle of the batch order
        # draws on Python's global generator, which a resumed process would not replay.
        shuffle=False,
        callbacks=callbacks,
        verbose=2 if os.environ.get("SKETCH_PROGRESS_BAR", "") != "1" else 1,
    )
    return save_state.history


@contextlib.contextmanager
def distribution(config: TrainConfig) -> Iterator[int]:
    """Data parallel over every local device with ``--distribute``, else one device."""
    if not config.distribute:
        yield 1
        return
    from src.training.distribute import data_parallel

    with data_parallel(config.batch_size) as replicas:
        logger.info(
            "data parallel over %d devices, %d images each per batch",
            replicas,
            config.batch_size // replicas,
        )
        yield replicas
