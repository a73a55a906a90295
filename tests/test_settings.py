"""``sgs.settings.verbosity`` and logging in scverse style; quiet Lightning training."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import warnings
from logging.handlers import BufferingHandler

import pytest

import scgensynth as sgs
from scgensynth._utils._logging import FallbackHandler, Verbosity, quiet_training
from scgensynth.cli import main

#: what Lightning (and torch inside it) says during a training run that the user need not see
NOISE = (
    "litlogger",
    "💡",
    "GPU available",
    "TPU available",
    "Seed set to",
    "LeafSpec",
    "does not have many workers",
    "in eval mode",
)
#: the warnings behind NOISE, word for word as Lightning 2.x and torch issue them
NOISY_WARNINGS = [
    "`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec) and "
    "treespec.is_leaf()` instead.",
    "The 'train_dataloader' does not have many workers which may be a bottleneck. Consider "
    "increasing the value of the `num_workers` argument` to `num_workers=15` in the "
    "`DataLoader` to improve performance.",
    "Found 2 module(s) in eval mode at the start of training. This may lead to unexpected "
    "behavior during training. If this is intentional, you can ignore this warning.",
    "GPU available but not used. You can set it by doing `Trainer(accelerator='gpu')`.",
    "The number of training batches (5) is smaller than the logging interval "
    "Trainer(log_every_n_steps=50). Set a lower value for log_every_n_steps if you want to "
    "see logs for the training epoch.",
]
LOGGER = logging.getLogger("scgensynth")


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=False
    )


@pytest.fixture(autouse=True)
def restore_logging():
    """Each test starts from the package's defaults and leaves them as it found them."""
    level, handlers = LOGGER.level, list(LOGGER.handlers)
    LOGGER.setLevel(logging.NOTSET)
    LOGGER.handlers[:] = []  # (an earlier test's `scgensynth` command attached one)
    yield
    LOGGER.setLevel(level)
    LOGGER.handlers[:] = handlers


# -- import: no handler, propagation, nothing heavy ------------------------------------------
def test_import_attaches_no_handler_and_loads_nothing_heavy():
    result = _python(
        """
        import logging, sys
        import scgensynth as sgs
        logger = logging.getLogger("scgensynth")
        print(logger.handlers, logger.propagate, logger.level)
        print("scgensynth._settings" in sys.modules)
        print(repr(sgs.settings.verbosity), logger.handlers)
        print([m for m in ("torch", "scvi", "lightning", "scanpy") if m in sys.modules])
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "[] True 0",  # no handler, propagates, no level of its own
        "False",  # sgs.settings is imported on first use
        "<Verbosity.warning: 1> []",  # reading the verbosity attaches nothing
        "[]",
    ]
    assert "settings" in dir(sgs)
    assert "settings" in sgs.__all__


# -- the setting ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "verbosity", "level"),
    [
        ("error", 0, logging.ERROR),
        ("warning", 1, logging.WARNING),
        ("info", 2, logging.INFO),
        ("debug", 3, logging.DEBUG),
        ("hint", 3, logging.DEBUG),  # scanpy's hint: we have nothing between info and debug
        ("INFO", 2, logging.INFO),
        (0, 0, logging.ERROR),
        (1, 1, logging.WARNING),
        (2, 2, logging.INFO),
        (3, 3, logging.DEBUG),
        (4, 3, logging.DEBUG),  # scanpy's debug
        (logging.INFO, 2, logging.INFO),  # scvi-tools' convention
        (logging.DEBUG, 3, logging.DEBUG),
        (Verbosity.info, 2, logging.INFO),
    ],
)
def test_verbosity_values(value, verbosity, level):
    sgs.settings.verbosity = value
    assert sgs.settings.verbosity == verbosity
    assert isinstance(sgs.settings.verbosity, Verbosity)
    assert LOGGER.level == level
    assert f"verbosity={Verbosity(verbosity).name!r}" in repr(sgs.settings)


def test_scanpy_verbosity_can_be_assigned():
    import scanpy as sc

    for theirs, ours in [("warning", 1), ("info", 2), ("hint", 3), ("debug", 3)]:
        sgs.settings.verbosity = sc.Verbosity[theirs]
        assert sgs.settings.verbosity == ours


@pytest.mark.parametrize("value", ["loud", "", -1, 5, 7, 25, True, 2.0, [2]])
def test_bad_verbosity(value):
    with pytest.raises(ValueError, match=r"verbosity must be one of 'error', 'warning'"):
        sgs.settings.verbosity = value
    assert LOGGER.level == logging.NOTSET  # unchanged
    assert LOGGER.handlers == []


def test_setting_attaches_one_fallback_handler_and_none_resets():
    sgs.settings.verbosity = "info"
    sgs.settings.verbosity = "debug"
    assert [type(h) for h in LOGGER.handlers] == [FallbackHandler]
    assert LOGGER.propagate
    sgs.settings.verbosity = None  # back to following the logging configuration
    assert LOGGER.level == logging.NOTSET


def test_override_restores_the_previous_state():
    with sgs.settings.override(verbosity="debug") as settings:
        assert settings.verbosity == Verbosity.debug
    assert LOGGER.level == logging.NOTSET
    sgs.settings.verbosity = "error"
    with pytest.raises(RuntimeError), sgs.settings.override(verbosity="info"):
        raise RuntimeError
    assert sgs.settings.verbosity == Verbosity.error
    with pytest.raises(ValueError, match="verbosity"), sgs.settings.override(verbosity="x"):
        pass
    assert sgs.settings.verbosity == Verbosity.error


# -- records reach the root logger (caplog) at the verbosity --------------------------------
def _messages(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("scgensynth")]


def test_unset_verbosity_follows_the_logging_configuration(caplog):
    log = logging.getLogger("scgensynth.tl._train")
    assert sgs.settings.verbosity == Verbosity.warning  # Python's default: warnings
    log.info("a step")
    log.warning("a problem")
    assert _messages(caplog) == ["a problem"]
    caplog.clear()
    caplog.set_level(logging.INFO)  # the application asks for more (on the root logger)
    assert sgs.settings.verbosity == Verbosity.info
    log.info("a step")
    log.debug("a detail")
    assert _messages(caplog) == ["a step"]


def test_verbosity_decides_over_the_logging_configuration(caplog):
    log = logging.getLogger("scgensynth.metrics._evaluate")
    sgs.settings.verbosity = "info"  # more than the root logger's WARNING
    log.info("a step")
    log.debug("a detail")
    assert _messages(caplog) == ["a step"]
    caplog.clear()
    caplog.set_level(logging.INFO)
    sgs.settings.verbosity = "error"  # less than the root logger's INFO
    log.info("a step")
    log.warning("a problem")
    log.error("a failure")
    assert _messages(caplog) == ["a failure"]
    # records reach the root's handlers: caplog holds each one once
    assert [r.levelname for r in caplog.records if r.name.startswith("scgensynth")] == ["ERROR"]


# -- no logging set-up (a notebook) and logging.basicConfig (an application) -----------------
def test_a_notebook_without_logging_set_up_sees_our_lines_on_stderr():
    result = _python(
        """
        import logging
        import scgensynth as sgs
        log = logging.getLogger("scgensynth.tl._train")
        log.info("hidden: info at the default verbosity")
        log.warning("a problem")  # Python's last resort shows warnings
        sgs.settings.verbosity = "info"
        log.info("a step")
        log.debug("hidden: debug at info")
        sgs.settings.verbosity = "error"
        log.warning("hidden: a warning at error")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == ["a problem", "INFO [scgensynth] a step"]


def test_logging_basicconfig_users_get_each_record_once():
    result = _python(
        """
        import logging, sys
        import scgensynth as sgs
        logging.basicConfig(level=logging.INFO, format="%(name)s|%(message)s", stream=sys.stdout)
        log = logging.getLogger("scgensynth.tl._train")
        log.info("one")  # verbosity not set: the configuration's INFO applies
        sgs.settings.verbosity = "warning"
        log.info("hidden: info at warning")
        log.warning("two")
        sgs.settings.verbosity = "debug"
        log.debug("three")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "scgensynth.tl._train|one",
        "scgensynth.tl._train|two",
        "scgensynth.tl._train|three",
    ]
    assert result.stderr == ""  # our fallback handler stays silent


# -- quiet training -------------------------------------------------------------------------
@pytest.mark.parametrize("message", NOISY_WARNINGS, ids=lambda m: m.split()[1])
def test_quiet_training_ignores_irrelevant_warnings_unless_debug(message):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_training():
            warnings.warn(message, UserWarning, stacklevel=1)
            warnings.warn("a warning about the data", UserWarning, stacklevel=1)
        assert [str(w.message) for w in caught] == ["a warning about the data"]
        caught.clear()
        with sgs.settings.override(verbosity="debug"), quiet_training():
            warnings.warn(message, UserWarning, stacklevel=1)
        assert [str(w.message) for w in caught] == [message]


def test_quiet_training_raises_lightning_loggers_and_restores_them():
    import lightning.pytorch  # noqa: F401 - sets its loggers to INFO when imported

    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric")]
    before = [lg.level for lg in loggers]
    with quiet_training():
        assert not any(lg.isEnabledFor(logging.INFO) for lg in loggers)
        assert all(lg.isEnabledFor(logging.WARNING) for lg in loggers)
    assert [lg.level for lg in loggers] == before
    with sgs.settings.override(verbosity="debug"), quiet_training():
        assert [lg.level for lg in loggers] == before


def _train_and_listen(adata) -> tuple[list[logging.LogRecord], list[str]]:
    """Train briefly inside quiet_training(); the log records and warnings it let through."""
    handler = BufferingHandler(capacity=100_000)  # keeps every record in handler.buffer
    # handlers on Lightning's loggers themselves: they do not always propagate to the root
    names = ("scgensynth", "lightning.pytorch", "lightning.fabric")
    loggers = [logging.getLogger(name) for name in names]
    for lg in loggers:
        lg.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # pytest's own filters would hide some of NOISE
            with quiet_training():
                sgs.tl.train_wgan(
                    adata, categorical_covariate_keys=["tissue"], n_steps=6, batch_size=16,
                    seed=0, n_hidden=(32, 32), enable_progress_bar=False,
                )  # fmt: skip
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
    return handler.buffer, [str(w.message) for w in caught]


def test_training_is_quiet_at_the_default_verbosity(three_tissues, capfd, caplog):
    records, caught = _train_and_listen(three_tissues)
    out, err = capfd.readouterr()
    heard = [out, err, *(r.getMessage() for r in records), *caught, caplog.text]
    for noise in NOISE:
        assert not [text for text in heard if noise in text], noise
    # our own lines at the default verbosity: warnings only (16 constant genes here)
    assert {r.levelname for r in records if r.name.startswith("scgensynth")} == {"WARNING"}


def test_training_tells_everything_at_debug(three_tissues):
    with sgs.settings.override(verbosity="debug"):
        records, _ = _train_and_listen(three_tissues)
    messages = [r.getMessage() for r in records]
    for expected in ("GPU available", "Seed set to", "Training WGANGP on"):
        assert [m for m in messages if expected in m], expected


# -- the command line -------------------------------------------------------------------------
def test_cli_leaves_the_verbosity_as_it_found_it(tmp_path, capsys):
    sgs.settings.verbosity = "error"
    argv = ["train", str(tmp_path / "missing.h5ad"), "--out", str(tmp_path / "model")]
    assert main(argv) == 1
    assert "does not exist" in capsys.readouterr().err
    assert sgs.settings.verbosity == Verbosity.error


def test_cli_prints_one_line_per_step_and_no_lightning_chatter(three_tissues, tmp_path):
    data = tmp_path / "small.h5ad"
    three_tissues.write_h5ad(data)
    model = tmp_path / "model"
    result = subprocess.run(
        [sys.executable, "-m", "scgensynth", "train", str(data), "--out", str(model),
         "--categorical", "tissue", "--model", "wgan", "--n-steps", "4", "--batch-size", "16"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Saved WGANGP(")  # the progress bar is on stderr
    assert "Training WGANGP: 100%" in result.stderr  # in steps
    lines = result.stderr.splitlines()
    assert [x for x in lines if x.startswith("INFO [scgensynth] Training WGANGP on 54 samples")]
    assert [x for x in lines if x.startswith("WARNING [scgensynth] 16 gene(s) have zero var")]
    for noise in NOISE:
        assert noise not in result.stderr, noise


def test_cli_refuses_a_missing_input_without_loading_lightning(tmp_path):
    """Quiet training (which imports Lightning) starts after the checks, not before."""
    argv = ["train", str(tmp_path / "missing.h5ad"), "--out", str(tmp_path / "model")]
    result = _python(
        f"""
        import sys
        from scgensynth.cli import main
        code = main({argv!r})
        print(code, "lightning" in sys.modules)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "False"]
    assert "does not exist" in result.stderr


# -- a notebook beside scanpy and scvi-tools ----------------------------------------------------
NOTEBOOK = """
    import logging, sys
    import numpy as np
    import scanpy as sc
    import scvi
    import scgensynth as sgs
    {setting}
    gtex = sgs.datasets.gtex_tissues()
    adata = gtex[gtex.obs["tissue"].isin(["Liver", "Lung", "Blood"])].copy()
    print("<train>", file=sys.stderr)
    model = sgs.tl.train(adata, "wgan", categorical_covariate_keys=["tissue"], n_steps=8,
                         batch_size=16, n_hidden=(32, 32), enable_progress_bar=False)
    print("<again>", file=sys.stderr)
    model.train(n_steps=4, batch_size=16, enable_progress_bar=False)
    print("<load>", file=sys.stderr)
    model.save({folder!r}, overwrite=True)
    for _ in range(2):
        type(model).load({folder!r}, adata=adata)
    print("<generate>", file=sys.stderr)
    synth = model.generate(60, seed=0)
    print("<evaluate>", file=sys.stderr)
    sgs.metrics.evaluate(adata, synth, labels_key="tissue", metrics="fast")
    print("<end>", file=sys.stderr)
"""


def _sections(stderr: str) -> dict[str, list[str]]:
    """stderr's lines between the ``<step>`` markers, per step."""
    out: dict[str, list[str]] = {}
    current = None
    for line in stderr.splitlines():
        if line.startswith("<") and line.endswith(">"):
            current = line.strip("<>")
            out[current] = []
        elif current is not None:
            out[current].append(line)
    return out


def test_a_notebook_at_default_verbosity_hears_each_warning_once(tmp_path):
    result = _python(NOTEBOOK.format(setting="", folder=str(tmp_path / "m")))
    assert result.returncode == 0, result.stderr
    said = _sections(result.stderr)
    assert len(said["train"]) <= 5, said["train"]
    assert [x for x in said["train"] if "16 gene(s) have zero variance" in x]
    assert said["again"] == []  # no "Found N module(s) in eval mode", no Lightning lines
    assert said["load"] == []  # the model warned of its data when it was trained
    assert said["generate"] == said["evaluate"] == []
    for noise in NOISE:
        assert noise not in result.stderr, noise


@pytest.mark.parametrize(
    "setting",
    ["sc.settings.verbosity = 0", "scvi.settings.verbosity = logging.ERROR"],
    ids=["scanpy", "scvi"],
)
def test_scanpy_or_scvi_verbosity_zero_silences_scgensynth(setting, tmp_path):
    result = _python(NOTEBOOK.format(setting=setting, folder=str(tmp_path / "m")))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert all(lines == [] for lines in _sections(result.stderr).values()), result.stderr


def test_scanpy_verbosity_info_shows_our_steps_and_ours_decides_over_it(tmp_path):
    code = NOTEBOOK.format(setting="sc.settings.verbosity = 2", folder=str(tmp_path / "m"))
    said = _sections(_python(code).stderr)
    assert [x for x in said["train"] if x.startswith("INFO [scgensynth] Training WGANGP on")]
    assert len([x for x in said["evaluate"] if x.startswith("INFO")]) == 1  # one line a call
    quiet = "sc.settings.verbosity = 2\n    sgs.settings.verbosity = 'error'"
    result = _python(NOTEBOOK.format(setting=quiet, folder=str(tmp_path / "m")))
    assert all(lines == [] for lines in _sections(result.stderr).values()), result.stderr
