"""``bench.step_profile``: a replayed step's kernels charged with the time each adds to the chain."""

from __future__ import annotations

import pytest

from pagedllm.bench.step_profile import KernelSpan, by_kernel, chain_links, format_table


def replay(offset: float) -> list[KernelSpan]:
    # qkv runs 0-10; attention launches early under PDL (starts at 4, waits, ends at 25); a gap of 5
    # where the GPU idles; o_proj runs 30-36; then qkv of the next layer, back to back.
    return [
        KernelSpan("qkv", offset + 0, offset + 10),
        KernelSpan("attention", offset + 4, offset + 25),
        KernelSpan("o_proj", offset + 30, offset + 36),
        KernelSpan("qkv", offset + 36, offset + 46),
    ]


def test_charges_sum_to_the_replay_and_count_waits_and_gaps_where_they_fall():
    spans = replay(0) + replay(100) + replay(200)
    links = chain_links(list(reversed(spans)), replays=3)  # order of arrival does not matter
    assert [link.name for link in links] == ["qkv", "attention", "o_proj", "qkv"]
    assert [link.charge_us for link in links] == [10, 15, 11, 10]
    assert sum(link.charge_us for link in links) == 46  # the replay, first start to last end
    assert [link.gap_us for link in links] == [0, 0, 5, 0]
    assert links[1].duration_us == 21  # its own span holds the wait for qkv
    rows = by_kernel(links)
    assert rows[0] == {"kernel": "qkv", "count": 2, "charge_us": 20, "gap_us": 0}
    assert "46.0 us over 4 kernels" in format_table(links)


def test_takes_the_median_of_the_replays():
    slow = [KernelSpan(s.name, s.start_us, s.end_us + (30 if s.name == "o_proj" else 0)) for s in replay(200)]
    slow[-1] = KernelSpan("qkv", 266, 276)
    links = chain_links(replay(0) + replay(100) + slow, replays=3)
    assert links[2].charge_us == 11


def test_refuses_replays_that_ran_different_kernels():
    other = [KernelSpan("other" if s.name == "o_proj" else s.name, s.start_us, s.end_us) for s in replay(100)]
    with pytest.raises(ValueError, match="different kernels"):
        chain_links(replay(0) + other, replays=2)
    with pytest.raises(ValueError, match="equal replays"):
        chain_links(replay(0)[:3] + replay(100), replays=2)
