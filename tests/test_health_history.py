"""SampleHistory: the compact health history behaves as the bounded deque it replaced."""

from __future__ import annotations

import math
from collections import deque

import pytest

from oneiric_core.domains import HealthStatus
from oneiric_core.health import HealthSample, SampleHistory


def sample(i: int) -> HealthSample:
    status = list(HealthStatus)[i % len(HealthStatus)]
    return HealthSample(1000.0 + i, status, None if i % 3 == 0 else i * 0.5)


@pytest.mark.parametrize("maxlen", [1, 2, 5, 60])
def test_history_matches_a_bounded_deque(maxlen: int) -> None:
    history, reference = SampleHistory(maxlen), deque(maxlen=maxlen)
    for i in range(3 * maxlen + 2):
        history.append(sample(i))
        reference.append(sample(i))
        assert len(history) == len(reference)
        assert list(history) == list(reference)
        assert history.latencies() == [s.latency_ms for s in reference]
        assert history[0] == reference[0] and history[-1] == reference[-1]
    with pytest.raises(IndexError):
        history[len(reference)]


def test_empty_history_and_latency_none_round_trip() -> None:
    history = SampleHistory(3)
    assert len(history) == 0 and not history and list(history) == [] and history.latencies() == []
    history.append(HealthSample(1.0, HealthStatus.FAILED, None))
    history.append(HealthSample(2.0, HealthStatus.OK, 0.25))
    assert [s.latency_ms for s in history] == [None, 0.25]
    assert not math.isnan(history[-1].latency_ms)
