"""The one explicit list of scgensynth's generators."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class _Entry:
    module: str
    cls: str
    description: str
    reference: str


#: name -> generator; ``sgs.tl.train(adata, model=name)`` and ``compare_generators`` use it
_REGISTRY: dict[str, _Entry] = {
    "wgan": _Entry(
        "scgensynth.model._wgan",
        "WGANGP",
        "conditional Wasserstein GAN with gradient penalty and covariate embeddings",
        "Viñas et al. 2022",
    ),
    "gan": _Entry(
        "scgensynth.model._gan",
        "GAN",
        "conditional vanilla GAN (non-saturating cross-entropy), WGAN-GP's conditioning",
        "Lacan et al. 2023",
    ),
    "attgan": _Entry(
        "scgensynth.model._attgan",
        "AttGAN",
        "WGAN-GP refined by sparse gene-gene attention over a co-expression graph",
        "Lacan et al. 2023",
    ),
    "randattgan": _Entry(
        "scgensynth.model._attgan",
        "RandAttGAN",
        "AttGAN over a degree-matched random graph (the lesion control)",
        "Lacan et al. 2023",
    ),
    "cvae": _Entry(
        "scgensynth.model._cvae",
        "CVAE",
        "conditional variational autoencoder (scvi-tools encoder/decoder blocks)",
        "Lacan et al. 2023 (VAE baseline)",
    ),
    "ddpm": _Entry(
        "scgensynth.model._ddpm",
        "DDPM",
        "conditional denoising diffusion (MLP denoiser, DDPM/DDIM samplers, guidance)",
        "Lacan's thesis; Ho et al. 2020; Song et al. 2021",
    ),
    "gmda": _Entry(
        "scgensynth.model._gmda",
        "GMDA",
        "small generator trained by aligning real and generated mass in random probes",
        "Lacan et al. 2024",
    ),
    "noise": _Entry(
        "scgensynth.model._noise",
        "NoiseAugmenter",
        "baseline: real training samples plus Gaussian noise (variance 0.1, scaled space)",
        "Lacan et al. 2023",
    ),
}


def available() -> pd.DataFrame:
    """The generators scgensynth provides, by the name ``sgs.tl.train`` takes.

    Returns
    -------
    DataFrame indexed by name with columns ``class``, ``description`` and ``reference``.

    Examples
    --------
    >>> import scgensynth as sgs
    >>> table = sgs.model.available()
    >>> table.loc["wgan", "class"]
    'WGANGP'
    """
    return pd.DataFrame(
        {
            "class": [e.cls for e in _REGISTRY.values()],
            "description": [e.description for e in _REGISTRY.values()],
            "reference": [e.reference for e in _REGISTRY.values()],
        },
        index=pd.Index(list(_REGISTRY), name="model"),
    )


def get_model_class(name: str) -> type:
    """The model class registered as ``name`` (see :func:`available`).

    Examples
    --------
    >>> import scgensynth as sgs
    >>> sgs.model.get_model_class("attgan").__name__
    'AttGAN'
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        msg = f"Unknown model {name!r}; choose one of {list(_REGISTRY)} (sgs.model.available())."
        raise ValueError(msg)
    entry = _REGISTRY[name]
    return getattr(importlib.import_module(entry.module), entry.cls)


def load_model(dir_path: str, adata=None, **kwargs):
    """Load a saved model of any scgensynth class (the class is read from the file).

    Works for every generator in :func:`available` and for
    :class:`~scgensynth.model.TSPG`. Only the file's JSON metadata is read to find the
    class; the file is never unpickled (see the class's ``load``).

    Parameters
    ----------
    dir_path
        Folder written by the model's ``save``.
    adata
        AnnData with the training genes, as for the class's ``load``.
    **kwargs
        Passed to the class's ``load`` (``accelerator``, ``device``, ``prefix``).

    Examples
    --------
    >>> import scgensynth as sgs
    >>> model = sgs.model.load_model("wgan/", adata=adata)  # doctest: +SKIP
    """
    from .base._files import ModelFileError
    from .base._save import read_metadata

    name = read_metadata(dir_path, prefix=kwargs.get("prefix"))["class"]
    if name == "TSPG":
        from ._tspg import TSPG

        return TSPG.load(dir_path, adata=adata, **kwargs)
    by_class = {e.cls: key for key, e in _REGISTRY.items()}
    if not isinstance(name, str) or name not in by_class:  # read_metadata checked it's a str
        msg = (
            f"{dir_path} holds a {name!r} model, which is not a scgensynth model class (the "
            f"file's header field 'class'; known: {sorted([*by_class, 'TSPG'])})."
        )
        raise ModelFileError(msg)
    return get_model_class(by_class[name]).load(dir_path, adata=adata, **kwargs)
