"""One logger for the package, so warnings (e.g. truncation) reach the CLI user and test caplog alike."""

import logging

log = logging.getLogger("siliconlab")
