"""Logging in scverse style: verbosity levels, a last-resort handler, quiet Lightning training.

How the pieces fit (:mod:`scgensynth._settings` holds the user-facing setting):

- every module logs through ``logging.getLogger(__name__)``, a child of the ``"scgensynth"``
  logger, which propagates to the root logger and gets no handler at import;
- :attr:`scgensynth.settings.verbosity` is the level of the ``"scgensynth"`` logger, in
  scanpy's scale (:class:`Verbosity`). Until it is set the logger has no level of its own
  and follows Python's logging configuration: warnings only, unless the application (or
  ``logging.basicConfig``, or pytest's ``caplog.set_level``) asked for more;
- setting the verbosity also attaches :class:`FallbackHandler` (as scvi-tools' settings
  attach their handler), which writes a record to stderr only when no other handler will,
  so a notebook shows our lines without any logging set-up and a configured application
  gets each record once, from its own handlers;
- :func:`quiet_training` hides Lightning's tips, device lines and irrelevant warnings
  around a training run, unless the verbosity is debug.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
import warnings
from collections.abc import Iterator
from enum import IntEnum

#: the package's logger; module loggers (``scgensynth.tl._train``, ...) are its children
LOGGER_NAME = "scgensynth"
#: how :class:`FallbackHandler` (the notebook's and the command line's output) writes a record
LOG_FORMAT = "%(levelname)s [scgensynth] %(message)s"


class Verbosity(IntEnum):
    """Verbosity levels of :attr:`scgensynth.settings.verbosity` (scanpy's scale).

    ``error`` (0), ``warning`` (1), ``info`` (2: one line per step of work) and ``debug`` (3:
    details, and Lightning's own messages during training). scanpy's ``hint`` (3) and
    ``debug`` (4) both mean ``debug`` here.

    Examples
    --------
    >>> Verbosity.info.level == logging.INFO
    True
    >>> Verbosity.debug > Verbosity.warning
    True
    """

    error = 0
    warning = 1
    info = 2
    debug = 3

    @property
    def level(self) -> int:
        """The :mod:`logging` level of this verbosity."""
        return (logging.ERROR, logging.WARNING, logging.INFO, logging.DEBUG)[self.value]


#: names accepted for a verbosity (scanpy's, with its ``hint`` as ``debug``)
_NAMES = {
    "error": Verbosity.error,
    "warning": Verbosity.warning,
    "warn": Verbosity.warning,
    "info": Verbosity.info,
    "hint": Verbosity.debug,
    "debug": Verbosity.debug,
}
#: :mod:`logging` levels accepted for a verbosity (as scvi-tools' ``settings.verbosity``)
_LEVELS = {
    logging.DEBUG: Verbosity.debug,
    logging.INFO: Verbosity.info,
    logging.WARNING: Verbosity.warning,
    logging.ERROR: Verbosity.error,
    logging.CRITICAL: Verbosity.error,
}


def as_verbosity(value: Verbosity | int | str) -> Verbosity:
    """A verbosity from a name, a level of scanpy's scale (0-4) or a :mod:`logging` level.

    Examples
    --------
    >>> as_verbosity("info"), as_verbosity(0), as_verbosity(4), as_verbosity(logging.DEBUG)
    (<Verbosity.info: 2>, <Verbosity.error: 0>, <Verbosity.debug: 3>, <Verbosity.debug: 3>)
    >>> as_verbosity("loud")
    Traceback (most recent call last):
    ...
    ValueError: verbosity must be one of 'error', 'warning', 'info', 'debug' (or 'hint'), a level 0-4 as in scanpy, or a logging level (logging.INFO, ...); got 'loud'.
    """  # noqa: E501
    if isinstance(value, str) and value.lower() in _NAMES:
        return _NAMES[value.lower()]
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value <= 4:  # scanpy's Verbosity (an int) included
            return Verbosity(min(int(value), Verbosity.debug))
        if value in _LEVELS:
            return _LEVELS[value]
    msg = (
        "verbosity must be one of 'error', 'warning', 'info', 'debug' (or 'hint'), a level "
        f"0-4 as in scanpy, or a logging level (logging.INFO, ...); got {value!r}."
    )
    raise ValueError(msg)


def verbosity_of_level(level: int) -> Verbosity:
    """The verbosity that shows the records of ``level`` and up.

    Examples
    --------
    >>> verbosity_of_level(logging.WARNING), verbosity_of_level(15)
    (<Verbosity.warning: 1>, <Verbosity.info: 2>)
    """
    for verbosity in (Verbosity.debug, Verbosity.info, Verbosity.warning):
        if level <= verbosity.level:
            return verbosity
    return Verbosity.error


def current_verbosity() -> Verbosity:
    """The verbosity in force: the effective level of the ``"scgensynth"`` logger."""
    follow_scverse_verbosity()
    return verbosity_of_level(logging.getLogger(LOGGER_NAME).getEffectiveLevel())


#: True while a saved object (a model file) is rebuilt: what it warned of when it was made
#: (its data's constant genes, empty categories) is logged at debug, once per model
RESTORING: contextvars.ContextVar[bool] = contextvars.ContextVar("RESTORING", default=False)


@contextlib.contextmanager
def restoring() -> Iterator[None]:
    """Mark the code inside as rebuilding a saved object (see :data:`RESTORING`)."""
    token = RESTORING.set(True)
    try:
        yield
    finally:
        RESTORING.reset(token)


#: whether the user set ``sgs.settings.verbosity`` (then scanpy's and scvi-tools' are ignored)
_EXPLICIT = {"set": False}
#: the level :func:`follow_scverse_verbosity` last gave the logger (None: none)
_FOLLOWED: dict[str, int | None] = {"level": None}


def explicitly_set() -> bool:
    """Whether ``sgs.settings.verbosity`` was set by the user."""
    return _EXPLICIT["set"]


def set_explicitly(explicit: bool) -> None:
    """Record whether ``sgs.settings.verbosity`` was set by the user (``None`` unsets it)."""
    _EXPLICIT["set"] = explicit
    _FOLLOWED["level"] = None


def scverse_level() -> int | None:
    """The :mod:`logging` level scanpy's and scvi-tools' verbosities ask for, if set.

    A verbosity counts as set when it differs from its package's default (scanpy's
    ``warning``, scvi-tools' ``logging.INFO``); of two set ones the quieter wins, so
    ``sc.settings.verbosity = 0`` or ``scvi.settings.verbosity = logging.ERROR`` silences
    scgensynth too. Packages that were never imported are not consulted.
    """
    levels = []
    scanpy = sys.modules.get("scanpy")
    with contextlib.suppress(AttributeError, ValueError, TypeError):
        value = int(scanpy.settings.verbosity) if scanpy is not None else 1
        if value != 1:
            levels.append(as_verbosity(value).level)
    scvi = sys.modules.get("scvi")
    with contextlib.suppress(AttributeError, ValueError, TypeError):
        value = int(scvi.settings.verbosity) if scvi is not None else logging.INFO
        if value != logging.INFO:
            levels.append(as_verbosity(value).level)
    return max(levels) if levels else None


def follow_scverse_verbosity() -> None:
    """Give the ``"scgensynth"`` logger scanpy's / scvi-tools' verbosity, unless ours is set.

    Called where work starts (training, loading, generating, evaluating), so a notebook's
    ``sc.settings.verbosity = 0`` is respected without telling scgensynth. When neither is
    set (or ``sgs.settings.verbosity`` is), the logger's level is left as it is.
    """
    if _EXPLICIT["set"]:
        return
    logger = logging.getLogger(LOGGER_NAME)
    level = scverse_level()
    if level is None:
        if _FOLLOWED["level"] is not None and logger.level == _FOLLOWED["level"]:
            logger.setLevel(logging.NOTSET)  # scanpy / scvi went back to their defaults
        _FOLLOWED["level"] = None
        return
    if logger.level != level:
        logger.setLevel(level)
    _FOLLOWED["level"] = level
    attach_fallback_handler()  # as when our verbosity is set: lines reach the notebook


class FallbackHandler(logging.StreamHandler):
    """Writes a record to stderr only when no other handler receives it.

    Python's own last resort (:data:`logging.lastResort`) shows warnings only; this one shows
    what the verbosity lets through, formatted with :data:`LOG_FORMAT`. Whoever configured
    logging (``logging.basicConfig``, a notebook extension, pytest) gets each record once,
    through their handlers, and this one stays silent.
    """

    def __init__(self) -> None:
        logging.Handler.__init__(self)  # no stream of its own: stderr at each record
        self.setFormatter(logging.Formatter(LOG_FORMAT))

    @property
    def stream(self):
        """The current ``sys.stderr`` (redirections included)."""
        return sys.stderr

    def handle(self, record: logging.LogRecord) -> bool:
        """Emit ``record`` unless another handler receives it."""
        if self._others_handle(record.name):
            return False
        return super().handle(record)

    def _others_handle(self, name: str) -> bool:
        """Whether a handler other than this one is on the path of a record of ``name``."""
        logger: logging.Logger | None = logging.getLogger(name)
        while logger is not None:
            if any(h is not self for h in logger.handlers):
                return True
            if not logger.propagate:
                return False
            logger = logger.parent
        return False


def attach_fallback_handler() -> None:
    """Attach one :class:`FallbackHandler` to the ``"scgensynth"`` logger (idempotent)."""
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(h, FallbackHandler) for h in logger.handlers):
        logger.addHandler(FallbackHandler())


# -- training without Lightning's chatter ---------------------------------------------------
#: Lightning's loggers: its tips, "GPU/TPU available", "Seed set to", "`Trainer.fit` stopped"
LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric")
#: warnings that say nothing about the user's data or model (regular expressions, matched at
#: the start of the message)
NOISY_WARNINGS = (
    # torch deprecation hit inside Lightning's own code
    r".*isinstance\(treespec, LeafSpec\)",
    # the data are in memory: loader processes would only add start-up time
    r".*does not have many workers",
    # frozen parts (TSPG's pretrained classifier) stay in eval mode on purpose
    r".*module\(s\) in eval mode",
    # the user chose accelerator="cpu"
    r".*GPU available but not used",
    # short runs log once per epoch
    r".*is smaller than the logging interval",
)


@contextlib.contextmanager
def quiet_training() -> Iterator[None]:
    """Hide Lightning's tips, device lines and irrelevant warnings, unless verbosity is debug.

    Wrap it around the code that seeds and runs a Lightning ``Trainer``. Inside, Lightning's
    loggers show warnings and errors only (no "💡 Tip", "GPU available", "TPU available",
    "Seed set to", "`Trainer.fit` stopped") and the warnings of :data:`NOISY_WARNINGS` are
    ignored; everything else, our own log lines and the progress bar included, is unchanged,
    and both are restored on exit. At ``sgs.settings.verbosity = "debug"`` it does nothing.
    Like :class:`warnings.catch_warnings`, it changes process-wide state: do not train in two
    threads at once.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     with quiet_training():
    ...         warnings.warn("Found 2 module(s) in eval mode at the start of training.")
    ...         print(logging.getLogger("lightning.pytorch").isEnabledFor(logging.INFO))
    False
    >>> caught
    []
    """
    if current_verbosity() >= Verbosity.debug:  # (also follows scanpy's / scvi's setting)
        yield
        return
    # Lightning sets its loggers to INFO when it is imported: import it before raising them
    with contextlib.suppress(ImportError):
        import lightning.pytorch  # noqa: F401
    loggers = [logging.getLogger(name) for name in LIGHTNING_LOGGERS]
    saved = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        for pattern in NOISY_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
        try:
            for lg in loggers:
                if lg.getEffectiveLevel() < logging.WARNING:
                    lg.setLevel(logging.WARNING)
            yield
        finally:
            for lg, level in zip(loggers, saved, strict=True):
                lg.setLevel(level)
