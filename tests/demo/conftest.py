"""One demo session for every demo test: the real task models on two fast CPU units, loaded once.

onnxruntime-cpu-fp32 (the default order's first unit available everywhere) answers first; torch-cpu-fp32 is
the fp32 reference the agreement column compares with. Their artifacts are in the shared artifact store after
the first conversion, so loading here reuses them.
"""

from __future__ import annotations

import pytest

from siliconlab.demo.session import DemoSession

TEST_UNITS = ["onnxruntime-cpu-fp32", "torch-cpu-fp32"]
POSITIVE_REVIEW = "An absolutely wonderful film: brilliant acting, a moving story, and I loved every minute of it."
SPAM_MESSAGE = "WINNER!! You have won a 1000 GBP cash prize! Call 09061701461 now to claim your reward. T&C apply"


@pytest.fixture(scope="session")
def demo_session() -> DemoSession:
    session = DemoSession(TEST_UNITS, threads=1)
    for key in ("sentiment", "spam", "chat", "search"):
        session.prepare(key)
    return session


@pytest.fixture(scope="session")
def positive_review() -> str:
    return POSITIVE_REVIEW


@pytest.fixture(scope="session")
def spam_message() -> str:
    return SPAM_MESSAGE
