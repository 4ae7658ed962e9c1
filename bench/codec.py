"""Cost of the payload codec: the pydantic converter with and without encryption, side by side.

    .venv/bin/python -m bench.codec

Encodes and decodes a realistic `Observation` (the largest payload of a run) and reports
operations per second of both converters in the same run, and their ratio.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime
from decimal import Decimal

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

from charter.crypto.codec import PayloadKeyring
from charter.temporal.plugin import data_converter
from schemas import BankAccount, Invoice, Observation, Vendor


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


async def rate(converter: DataConverter, value: Observation, seconds: float = 1.5) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        payloads = await converter.encode([value])
        await converter.decode(payloads, [Observation])
        n += 1
    return n / (time.perf_counter() - start)


async def main() -> None:
    value = observation()
    plain, encrypted = pydantic_data_converter, data_converter(PayloadKeyring.generate())
    size = len((await plain.encode([value]))[0].data)
    await rate(plain, value, 0.3)  # warm up both
    await rate(encrypted, value, 0.3)
    r_plain, r_enc = await rate(plain, value), await rate(encrypted, value)
    print(f"payload {size} bytes")
    print(f"pydantic converter:            {r_plain:8.0f} encode+decode/s")
    print(f"pydantic converter + AES-GCM:  {r_enc:8.0f} encode+decode/s")
    print(f"ratio (encrypted / plain):     {r_enc / r_plain:8.2f}")


if __name__ == "__main__":
    asyncio.run(main())
