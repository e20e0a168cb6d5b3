"""One logger for the package, so warnings (e.g. truncation) reach the CLI user and test caplog alike."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("siliconlab")


@contextmanager
def quiet_loading() -> Iterator[None]:
    """transformers' "Loading weights" bars and INFO lines off while we load models, restored after: a library
    user calling `siliconlab.load` sees our answers, not the weights being read (the CLI silences them for good)."""
    from transformers.utils import logging as hf_logging

    bars, verbosity = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
