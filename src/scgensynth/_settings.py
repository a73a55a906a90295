"""``sgs.settings``: package-wide settings (the verbosity of the log), as ``sc.settings``.

Imports nothing but the standard library: ``import scgensynth`` stays fast and loads no
torch. The logging mechanics are in :mod:`scgensynth._utils._logging`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from scgensynth._utils._logging import (
    LOGGER_NAME,
    Verbosity,
    as_verbosity,
    attach_fallback_handler,
    current_verbosity,
    explicitly_set,
    set_explicitly,
)

__all__ = ["Settings", "Verbosity", "settings"]


class Settings:
    """Settings of scgensynth, as :data:`scanpy.settings` and :data:`scvi.settings`.

    Use the instance ``sgs.settings``.

    Examples
    --------
    >>> import scgensynth as sgs
    >>> with sgs.settings.override(verbosity="info"):
    ...     sgs.settings.verbosity
    <Verbosity.info: 2>
    """

    @property
    def verbosity(self) -> Verbosity:
        """How much scgensynth logs, on scanpy's scale (:class:`Verbosity`).

        ``"error"`` (0), ``"warning"`` (1), ``"info"`` (2: one line per step of work, e.g.
        "Training WGANGP on 324 samples ... for 14 epochs") or ``"debug"`` (3: details, and
        Lightning's own messages and warnings during training). Also accepted: scanpy's
        ``"hint"`` and level 4 (as debug), so ``sgs.settings.verbosity =
        sc.settings.verbosity`` works, and :mod:`logging` levels (``logging.INFO``, ...) as in
        scvi-tools.

        Until you set it, scgensynth follows scanpy's and scvi-tools' verbosities where you
        set them (``sc.settings.verbosity = 0`` or ``scvi.settings.verbosity =
        logging.ERROR`` silence it too; the quieter of the two wins), read when work starts
        (training, loading, generating, evaluating). Where neither is set, it follows
        Python's logging configuration: warnings only (scanpy's default, 1), or more where
        the application asked for more (``logging.basicConfig(level=logging.INFO)``,
        pytest's ``caplog.set_level``). Setting ``sgs.settings.verbosity`` decides over both.

        The verbosity is the level of the ``"scgensynth"`` logger, which propagates to the
        root logger. Setting it also attaches a handler that prints our records on stderr
        when no other handler receives them (a notebook without any logging set-up); where
        logging is configured, records reach your handlers once. ``None`` goes back to
        following the logging configuration.
        """
        return current_verbosity()

    @verbosity.setter
    def verbosity(self, value: Verbosity | int | str | None) -> None:
        logger = logging.getLogger(LOGGER_NAME)
        if value is None:
            set_explicitly(False)
            logger.setLevel(logging.NOTSET)
            return
        logger.setLevel(as_verbosity(value).level)
        set_explicitly(True)
        attach_fallback_handler()

    @contextlib.contextmanager
    def override(self, *, verbosity: Verbosity | int | str | None) -> Iterator[Settings]:
        """Set ``verbosity`` inside a ``with`` block, then restore what was there.

        Examples
        --------
        >>> import scgensynth as sgs
        >>> with sgs.settings.override(verbosity="error"):
        ...     sgs.settings.verbosity == 0
        True
        """
        logger = logging.getLogger(LOGGER_NAME)
        saved, explicit = logger.level, explicitly_set()
        try:
            self.verbosity = verbosity
            yield self
        finally:
            logger.setLevel(saved)
            set_explicitly(explicit)

    def __repr__(self) -> str:
        return f"scgensynth settings: verbosity={self.verbosity.name!r}"


#: the package's settings, ``sgs.settings``
settings = Settings()
