"""How much text a delta may gather grows with the turns a process streams at once."""

from __future__ import annotations

from commands.chat.text import Coalescing


def test_a_lone_turn_coalesces_little() -> None:
    c = Coalescing(max_tokens=20, interval_s=0.05, max_interval_s=1.0, busy_turns=100,
                   busy_max_tokens=100)
    assert c.interval(1) == 0.05 and c.tokens(1) == 20
    assert c.interval(0) == 0.05 and c.tokens(0) == 20


def test_a_busy_process_gathers_up_to_its_ceilings() -> None:
    c = Coalescing(max_tokens=20, interval_s=0.05, max_interval_s=1.0, busy_turns=100,
                   busy_max_tokens=100)
    assert abs(c.interval(51) - 0.525) < 1e-9 and c.tokens(51) == 60
    assert c.interval(101) == 1.0 and c.tokens(101) == 100
    assert c.interval(5000) == 1.0 and c.tokens(5000) == 100


def test_ceilings_below_the_floor_mean_no_growth() -> None:
    c = Coalescing(max_tokens=5, interval_s=0.02, max_interval_s=0.0, busy_max_tokens=0)
    assert c.interval(500) == 0.02 and c.tokens(500) == 5
