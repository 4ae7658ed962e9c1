"""What each fault scenario against the payments provider found: approved bills, orders at
the provider, doubled, lost and stuck, one line per scenario, printed after the suite."""

from __future__ import annotations

LINES: list[str] = []


def record(scenario: str, orders: dict[str, int], stuck: int) -> tuple[int, int]:
    """Note one scenario's line; its (doubled, lost)."""
    doubled = sum(n - 1 for n in orders.values() if n > 1)
    lost = sum(1 for n in orders.values() if n == 0)
    LINES.append(
        f"{scenario}: approved bills {len(orders)}, orders {sum(orders.values())}, "
        f"doubled {doubled}, lost {lost}, stuck {stuck}"
    )
    return doubled, lost
