"""Cost of the payload codec: the pydantic converter with and without encryption, side by side.

    python bench/codec.py [--ops 50] [--slices 20] [--rounds 5]

Encodes and decodes a realistic `Observation` (the largest payload of a run) and reports
round trips per CPU second of both converters, alternating in short slices, and the median
of the per-round ratios.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/codec.py` puts bench/ first, not the root
    sys.path.insert(0, str(ROOT))
from datetime import UTC, date, datetime  # noqa: E402
from decimal import Decimal  # noqa: E402

from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.converter import DataConverter  # noqa: E402

from bench.harness import arguments, parse, spread, turns  # noqa: E402
from bench.measures import Measure, write  # noqa: E402
from charter.crypto.codec import PayloadKeyring  # noqa: E402
from charter.temporal.plugin import data_converter  # noqa: E402
from schemas import BankAccount, Invoice, Observation, Vendor  # noqa: E402


def observation(invoices: int = 40) -> Observation:
    return Observation(
        tenant_id="acme",
        agent="payables",
        observed_at=datetime.now(UTC),
        source="demo-books",
        bank_accounts=[
            BankAccount(
                account_id="operating",
                name="Operating",
                currency="USD",
                balance=Decimal("182450.00"),
            )
        ],
        vendors=[
            Vendor(vendor_id=f"v{i}", name=f"Vendor {i}", verified=True, monthly_spend_limit=None)
            for i in range(10)
        ],
        invoices=[
            Invoice(
                invoice_id=f"INV-{i}",
                vendor_id=f"v{i % 10}",
                vendor_name=f"Vendor {i % 10}",
                amount=Decimal("1234.56"),
                currency="USD",
                due_date=date(2026, 12, 1),
                status="open",
                memo="Monthly services " * 4,
                amount_paid=Decimal(0),
            )
            for i in range(invoices)
        ],
    )


async def cpu_seconds(converter: DataConverter, value: Observation, ops: int) -> float:
    """CPU seconds of this process for `ops` encode+decode round trips: CPU time, not wall
    time, so other processes on a shared machine do not count against either side."""
    start = time.process_time()
    for _ in range(ops):
        payloads = await converter.encode([value])
        await converter.decode(payloads, [Observation])
    return time.process_time() - start


async def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--ops", type=int, default=50, help="round trips per slice")
    parser.add_argument("--slices", type=int, default=20, help="alternating slices per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (median)")
    args = parse(parser)
    value = observation()
    converters = {
        "plain": pydantic_data_converter,
        "encrypted": data_converter(PayloadKeyring.generate()),
    }
    size = len((await converters["plain"].encode([value]))[0].data)
    for converter in converters.values():  # warm up both
        await cpu_seconds(converter, value, 200)
    # Short slices, alternating: both converters see the same machine, slice by slice.
    rates: dict[str, list[float]] = {k: [] for k in converters}
    ratios = []
    for _ in range(args.rounds):
        spent = dict.fromkeys(converters, 0.0)
        for _, k in turns(list(converters), args.slices):
            spent[k] += await cpu_seconds(converters[k], value, args.ops)
        for k, seconds in spent.items():
            rates[k].append(args.ops * args.slices / seconds)
        ratios.append(spent["plain"] / spent["encrypted"])
    plain, encrypted = (statistics.median(rates[k]) for k in converters)
    ratio = statistics.median(ratios)
    print(f"payload {size} bytes, CPU time, median of {args.rounds} rounds of alternating slices")
    print(f"pydantic converter:            {plain:8.0f} encode+decode/s")
    print(f"pydantic converter + AES-GCM:  {encrypted:8.0f} encode+decode/s")
    print(f"ratio (encrypted / plain):     {ratio:8.2f}  (per round {spread(ratios)})")
    write(
        args.json,
        [
            Measure(
                name="payload codec vs the plain pydantic converter (throughput)",
                now=ratio,
                target=0.95,
                better="higher",
                detail=f"{encrypted:.0f} vs {plain:.0f} encode+decode/s of a {size // 1024} KiB "
                "observation",
            )
        ],
    )


if __name__ == "__main__":
    asyncio.run(main())
