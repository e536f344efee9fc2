"""pytest setup: fresh random inputs every run, with the seed printed (OMNIATTN_TEST_SEED replays it)."""
import os
import random
import zlib

import pytest
import torch

_SEED = int(os.environ.get("OMNIATTN_TEST_SEED", random.SystemRandom().randrange(2**31)))


def pytest_report_header(config):
    return f"omniattn test seed {_SEED} (OMNIATTN_TEST_SEED to replay)"


@pytest.fixture(autouse=True)
def _seeded(request):
    # Each test draws its own stream from the run's seed and its name, so tests replay independently.
    torch.manual_seed(_SEED ^ zlib.crc32(request.node.nodeid.encode()))



def pytest_terminal_summary(terminalreporter):
    # Also under -q, where the header is not shown: a failure can always be replayed.
    terminalreporter.write_line(f"omniattn test seed {_SEED} (OMNIATTN_TEST_SEED={_SEED} replays it)")
