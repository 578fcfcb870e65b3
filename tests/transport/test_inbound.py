"""The server-wide inbound byte budget."""

from __future__ import annotations

import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from appserver.transport.inbound import InboundBudget


async def test_charges_are_granted_first_come_first_served() -> None:
    budget = InboundBudget(100)
    await budget.acquire(60)
    order: list[str] = []

    async def take(name: str, size: int) -> None:
        await budget.acquire(size)
        order.append(name)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(take, "big", 70)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(take, "small", 10)  # would fit, but must not overtake
        await trio.testing.wait_all_tasks_blocked()
        assert order == []  # the small one fits (60 + 10) but waits behind the big one
        budget.release(60)
        await trio.testing.wait_all_tasks_blocked()
    assert sorted(order) == ["big", "small"]
    assert budget.used == 80


async def test_a_charge_larger_than_the_budget_passes_only_when_it_is_idle() -> None:
    budget = InboundBudget(100)
    await budget.acquire(10)
    with trio.move_on_after(0.05) as waited:
        await budget.acquire(500)
    assert waited.cancelled_caught
    assert (budget.used, budget.waiting) == (10, 0)  # a cancelled wait leaves nothing behind
    budget.release(10)
    await budget.acquire(500)
    assert budget.used == 500


@given(st.lists(st.integers(min_value=1, max_value=150), max_size=20))
def test_used_never_exceeds_the_limit_unless_one_charge_alone_does(sizes: list[int]) -> None:
    async def main() -> None:
        budget = InboundBudget(100)

        async def hold(size: int) -> None:
            await budget.acquire(size)
            assert budget.used <= 100 or budget.used == size
            await trio.lowlevel.checkpoint()
            budget.release(size)

        async with trio.open_nursery() as nursery:
            for size in sizes:
                nursery.start_soon(hold, size)
        assert (budget.used, budget.waiting) == (0, 0)

    trio.run(main)
