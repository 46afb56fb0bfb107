"""Frozen configuration dataclasses and project paths (resolved from PROJECT_ROOT, never the cwd)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The side of the square image every model in this project takes as input.
IMAGE_SIZE = 64

DEFAULT_MODEL_PATH = PROJECT_ROOT / "models" / "best_model.h5"
DEFAULT_LABELS_PATH = PROJECT_ROOT / "data" / "label_mapping.json"
DEFAULT_MODEL_CARD_PATH = PROJECT_ROOT / "models" / "model_card.json"
SAMPLES_DIR = PROJECT_ROOT / "samples"


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the project's sketch CNN."""

    num_classes: int = 24
    image_size: int = IMAGE_SIZE
    # Filters per stage; each stage is two 3x3 convolutions then a 2x2 max pool.
    filters: tuple[int, ...] = (32, 64, 128)
    # Width of the dense layer before the logits.
    dense_units: int = 256
    dropout: float = 0.3
    # Batch-norm moving-average momentum; tiny test models use a low one to settle in few steps.
    batch_norm_momentum: float = 0.99


@dataclass(frozen=True)
class TrainConfig:
    """Everything `python -m src.training.train` needs; argparse fills it."""

    bitmap_dir: Path | None = None
    strokes_dir: Path | None = None
    images_dir: Path | None = None
    classes: tuple[str, ...] = ()
    output_dir: Path = PROJECT_ROOT / "models"
    labels_path: Path = DEFAULT_LABELS_PATH
    epochs: int = 30
    batch_size: int = 256
    learning_rate: float = 2e-3
    validation_fraction: float = 0.1
    # Held out from training and early stopping alike: the figures the model card reports.
    test_fraction: float = 0.1
    # Strokes of classes that also have rasters are held out whole (the cross-domain check).
    holdout_cross_domain: bool = True
    # Of those strokes, the percentage (chosen by a hash of key_id) that joins training; the rest
    # stays held out as the cross-domain measurement. 0 holds them all out.
    cross_domain_train_percent: int = 50
    # Processes for pre-rendering strokes, and threads feeding augmented batches.
    workers: int = 2
    # Stop after the epoch that crosses this many minutes of fitting (0 = no limit).
    max_minutes: float = 0.0
    # Start from this trained model (fine-tuning) instead of fresh weights.
    init_model: Path | None = None
    # Early stopping patience, in epochs without a better validation accuracy.
    patience: int = 5
    seed: int = 42
    # Cap per class and source, so one huge class cannot dominate (0 = no cap).
    max_per_class: int = 0
    # Random augmentation (pen, look, affine jitter); off trains on the plain renders only.
    augment: bool = True
    # Outlier exposure: drawings of the strokes_dir categories that are not classes are trained
    # towards "none of these" (uniform probabilities), split by category into train/validation/test.
    outlier_exposure: bool = False
    outliers_per_category: int = 40
    # Each training outlier is queued this many times (with different random renderings).
    outlier_repeats: int = 2
    # Momentum of an exponential moving average of the weights (0 = off): validation, the
    # checkpoint and the shipped model then use the average, which smooths out the last steps'
    # noise of a small batch.
    ema_momentum: float = 0.0
    # Synthetic outliers (scrambled known drawings and two-class chimeras) added to the real ones.
    synthetic_outliers: int = 0
    # Loss weight of an outlier relative to a known drawing.
    outlier_weight: float = 0.5
    # Data-parallel over every local device (JAX backend; src/training/distribute.py).
    distribute: bool = False
    # Which builder of src/models/architectures.py makes a fresh model ("cnn" or "residual").
    architecture: str = "cnn"
    # Continue the interrupted run whose checkpoint is in output_dir/checkpoint.
    resume: bool = False
    # A JSON file of the comparison run that chose the architecture, copied into the card.
    architecture_comparison: Path | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
