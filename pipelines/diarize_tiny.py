"""A pyannote.audio 4 speaker-diarization pipeline with random weights, saved like a hub pipeline.

The folder has the layout of pyannote/speaker-diarization-community-1
(config.yaml with `$model/...` references, segmentation/, embedding/, plda/),
so it loads through exactly the same `Pipeline.from_pretrained(folder)` path
as the released one:

- segmentation: a small `PyanNet` with powerset specifications
  (3 speakers per chunk, at most 2 at once), like the released model;
- embedding: a `WeSpeakerResNet34` (256-d, 40 mel bands), randomly initialised;
- plda: random but well-formed VBx transforms (centring means, an LDA
  projection, an orthogonal PLDA transform and positive between-class
  variances), so the AHC + VBx clustering really runs.

Its output is meaningless by construction: it exists for tests and the offline demo.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from omni_caption.model.tiny_build import cached_build

TINY_DIARIZATION = "tiny-random"  # --diarize-model's name for it, as --model's for tiny-random
TINY_DIARIZATION_VERSION = "1"
EMBEDDING_DIM = 256  # WeSpeakerResNet34's output
LDA_DIM = 128  # pyannote's PLDA keeps the first 128 dimensions (PLDA.lda_dimension)
CHUNK_S = 5.0  # the released model uses 10 s; shorter keeps tests on short clips to several chunks
# The released pipeline steps 10% of a chunk; half a chunk gives a few times fewer embeddings to compute
# (each chunk costs one ResNet34 pass per local speaker) while still giving VBx several to cluster.

CONFIG_YAML = """\
dependencies:
  pyannote.audio: {version}
pipeline:
  name: pyannote.audio.pipelines.SpeakerDiarization
  params:
    clustering: VBxClustering
    embedding: $model/embedding
    embedding_batch_size: 16
    embedding_exclude_overlap: true
    plda: $model/plda
    segmentation: $model/segmentation
    segmentation_batch_size: 16
    segmentation_step: 0.5
params:
  clustering:
    threshold: 0.6
    Fa: 0.07
    Fb: 0.8
  segmentation:
    min_duration_off: 0.0
"""


def tiny_diarization_dir(cache_dir: Path, seed: int = 0) -> Path:
    """The folder holding the random pipeline, building it on first use."""
    target = Path(cache_dir) / f"tiny-diarization-v{TINY_DIARIZATION_VERSION}-seed{seed}"
    return cached_build(target, lambda staging: build_tiny_diarization(staging, seed), marker="config.yaml")


def build_tiny_diarization(folder: Path, seed: int = 0) -> Path:
    """Write the pipeline into `folder` (cached_build writes it beside its place and renames it in whole)."""
    import torch
    from pyannote.audio import __version__

    folder = Path(folder)
    torch.manual_seed(seed)
    _save_model(_segmentation_model(), folder / "segmentation")
    _save_model(_embedding_model(), folder / "embedding")
    _save_plda(np.random.default_rng(seed), folder / "plda")
    (folder / "config.yaml").write_text(CONFIG_YAML.format(version=__version__))
    return folder


def _segmentation_model():
    import torch
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.segmentation import PyanNet

    model = PyanNet(lstm={"hidden_size": 32, "num_layers": 1}, linear={"hidden_size": 32, "num_layers": 1})
    # What the pipeline reads: powerset => no threshold, frame resolution, chunk duration for the sliding window.
    model.specifications = Specifications(
        problem=Problem.MONO_LABEL_CLASSIFICATION, resolution=Resolution.FRAME, duration=CHUNK_S,
        min_duration=CHUNK_S, classes=["speaker#1", "speaker#2", "speaker#3"], powerset_max_classes=2,
        permutation_invariant=True)
    model.build()  # the classifier's size follows the specifications (7 powerset classes)
    with torch.no_grad():
        # Powerset class 0 is "nobody speaks". Random weights would often pick it everywhere and the
        # pipeline would stop before embeddings and clustering; favouring the two first single-speaker
        # classes makes every chunk hold a speaker long enough to be clustered.
        model.classifier.bias.copy_(torch.tensor([-4.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0]))
    return model


def _embedding_model():
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.embedding import WeSpeakerResNet34

    # 40 mel bands instead of the released 80: the same network and fbank path at 2.6x less compute,
    # which keeps the end-to-end test well inside its time budget on 2 CPU cores.
    model = WeSpeakerResNet34(num_mel_bins=40)
    # As pyannote's own wespeaker/convert.py does: a representation model, one vector per chunk.
    model.specifications = Specifications(problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK,
                                          duration=CHUNK_S)
    return model


def _save_model(model, folder: Path) -> None:
    """pytorch_model.bin as pyannote writes it: a Lightning checkpoint plus pyannote's own section."""
    import lightning
    import torch

    folder.mkdir(parents=True)
    checkpoint = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                  "pytorch-lightning_version": lightning.__version__}
    model.on_save_checkpoint(checkpoint)  # adds versions, architecture (module/class) and specifications
    torch.save(checkpoint, folder / "pytorch_model.bin")


def _save_plda(rng: np.random.Generator, folder: Path) -> None:
    """xvec_transform.npz + plda.npz with the arrays pyannote.audio.utils.vbx.vbx_setup reads.

    vbx_setup inverts tr.T @ tr and (tr.T / psi) @ tr and solves a generalised
    eigenproblem, so tr must be invertible and psi positive; VBx then takes
    sqrt(psi) as between-speaker variances.
    """
    folder.mkdir(parents=True)
    lda, _ = np.linalg.qr(rng.standard_normal((EMBEDDING_DIM, LDA_DIM)))  # orthonormal columns
    np.savez(folder / "xvec_transform.npz",
             mean1=rng.standard_normal(EMBEDDING_DIM) * 0.1,
             mean2=rng.standard_normal(LDA_DIM) * 0.1,
             lda=lda)
    tr, _ = np.linalg.qr(rng.standard_normal((LDA_DIM, LDA_DIM)))  # orthogonal: well conditioned
    psi = np.sort(rng.uniform(0.5, 50.0, LDA_DIM))[::-1].copy()
    np.savez(folder / "plda.npz", mu=rng.standard_normal(LDA_DIM) * 0.1, tr=tr, psi=psi)
