"""One-call tools in scanpy style.

Train, generate, augment, interpolate, compare generators, perturb samples (TSPG) and rank
counterfactual biomarkers. Every registered generator has a ``train_<name>`` shortcut of
:func:`train` (``sgs.tl.train_wgan``, ...), made from the registry.
"""

from ._compare import compare_generators
from ._counterfactual import counterfactual
from ._generate import augment, generate
from ._interpolate import interpolate
from ._perturb import perturb, train_tspg
from ._train import named_trainer, named_trainers, train

# train_wgan, train_gan, ...: one for each generator registered when sgs.tl is imported
globals().update(named_trainers())


def __getattr__(name: str):
    """``train_<name>`` of a generator registered later (``sgs.model.register``)."""
    if name.startswith("train_"):
        from scgensynth.model import available

        if name[len("train_") :] in available().index:
            return named_trainer(name[len("train_") :])
    msg = f"module 'scgensynth.tl' has no attribute {name!r}"
    raise AttributeError(msg)


__all__ = [
    "augment",
    "compare_generators",
    "counterfactual",
    "generate",
    "interpolate",
    "perturb",
    "train",
    "train_tspg",
    *named_trainers(),
]
