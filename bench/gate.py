"""The gate against raw CEL evaluation of the same conditions, side by side in one run.

Acme's constitution (charter/demo/acme.yaml) judges a run's proposals against an
observation of 40 invoices, the way the workflow gates a run: each proposal sees the ones
gated before it.

- raw CEL: the same conditions, compiled once, executed on the same facts (`facts_for`,
           which any engine judging these conditions needs as its input) converted to one
           `cel.Context` per proposal
- gate:    `gate.evaluate`: rule selection and expiry, the conditions, precedence,
           thresholds, citations, the explanation and the typed `Verdict`

    python bench/gate.py [--runs 40] [--slices 20] [--rounds 5]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/gate.py` puts bench/ first, not the root
    sys.path.insert(0, str(ROOT))

import cel  # noqa: E402

from bench.codec import observation  # noqa: E402
from bench.harness import arguments, parse, spread, turns  # noqa: E402
from bench.measures import Measure, write  # noqa: E402
from charter.demo.seed import constitution_source  # noqa: E402
from charter.governance import gate, spend  # noqa: E402
from charter.governance.constitution import content_hash, load_yaml  # noqa: E402
from charter.governance.facts import facts_for  # noqa: E402
from schemas import Constitution, Observation, Proposal  # noqa: E402


def acme() -> Constitution:
    document = load_yaml(constitution_source("acme"))
    return Constitution(
        tenant_id="acme", version=1, content_hash=content_hash(document), document=document
    )


def books() -> Observation:
    """The codec bench's 40 invoices, with distinct amounts (equal ones would all be
    flagged as possible duplicates and escalate)."""
    seen = observation()
    invoices = [
        i.model_copy(update={"amount": Decimal("180.00") + Decimal(37 * n)})
        for n, i in enumerate(seen.invoices)
    ]
    return seen.model_copy(update={"invoices": invoices})


def proposals(seen: Observation, count: int = 6) -> list[Proposal]:
    """Payments of the observed invoices: some allowed, some escalated (over the bound)."""
    out = []
    for i, invoice in enumerate(seen.invoices[:count]):
        out.append(
            Proposal(
                proposal_id=f"p{i + 1}",
                action="schedule_payment",
                amount=invoice.amount if i % 3 else invoice.amount + Decimal("12000.00"),
                currency=invoice.currency,
                counterparty=invoice.vendor_name,
                reference=invoice.invoice_id,
                rationale="Due this week; verified vendor.",
                citations=["allow-verified-vendor-bills"],
                confidence=0.92,
            )
        )
    return out


def gate_run(
    constitution: Constitution, seen: Observation, run: list[Proposal]
) -> Callable[[], None]:
    def once() -> None:
        earlier: list[Proposal] = []
        for p in run:
            verdict = gate.evaluate(constitution, p, seen, earlier)
            if verdict.outcome != "deny":
                earlier.append(p)

    return once


def raw_run(
    constitution: Constitution, seen: Observation, run: list[Proposal]
) -> Callable[[], None]:
    programs = {r.id: cel.compile(r.when) for r in constitution.document.rules}
    rules = constitution.document.rules

    def once() -> None:
        earlier: list[Proposal] = []
        for p in run:
            facts = facts_for(p, seen, earlier)
            # Converted once per proposal, with the functions the conditions may call.
            context = cel.Context(variables=facts, functions=spend.CEL_FUNCTIONS)
            denied = False
            for rule in rules:
                if p.action in rule.applies_to or "*" in rule.applies_to:
                    try:
                        hit = programs[rule.id].execute(context)
                    except Exception:
                        hit = rule.effect != "allow"
                    denied = denied or (hit is True and rule.effect == "deny")
            if not denied:
                earlier.append(p)

    return once


def cpu_seconds(fn: Callable[[], None], runs: int) -> float:
    """CPU seconds of this process for `runs` runs: other processes on a shared machine do
    not count against either side."""
    start = time.process_time()
    for _ in range(runs):
        fn()
    return time.process_time() - start


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--runs", type=int, default=40, help="gated runs per slice")
    parser.add_argument("--slices", type=int, default=20, help="alternating slices per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (median)")
    args = parse(parser)
    constitution, seen = acme(), books()
    run = proposals(seen)
    outcomes = []
    earlier: list[Proposal] = []
    for p in run:
        outcomes.append(gate.evaluate(constitution, p, seen, earlier).outcome)
        if outcomes[-1] != "deny":
            earlier.append(p)
    variants = {
        "raw CEL": raw_run(constitution, seen, run),
        "gate": gate_run(constitution, seen, run),
    }
    for fn in variants.values():  # warm up: compile caches, allocator
        cpu_seconds(fn, 100)
    # Short slices, alternating: both sides see the same machine, slice by slice.
    ratios: list[float] = []
    rates: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.rounds):
        spent = dict.fromkeys(variants, 0.0)
        for _, k in turns(list(variants), args.slices):
            spent[k] += cpu_seconds(variants[k], args.runs)
        for k, seconds in spent.items():
            rates[k].append(args.runs * args.slices * len(run) / seconds)
        ratios.append(spent["raw CEL"] / spent["gate"])
    rules = len(constitution.document.rules)
    print(
        f"{len(run)} proposals per run ({', '.join(outcomes)}), {rules} rules, CPU time, "
        f"median of {args.rounds} rounds of alternating slices"
    )
    for k, each in rates.items():
        print(f"{k:<8} {statistics.median(each):>9.0f} proposals/s")
    ratio = statistics.median(ratios)
    print(f"gate/raw CEL {ratio:.2f}x (per round {spread(ratios)})")
    write(
        args.json,
        [
            Measure(
                name="gate evaluation vs raw CEL of the same conditions (throughput)",
                now=ratio,
                target=0.8,
                better="higher",
                detail=f"{statistics.median(rates['gate']):.0f} vs "
                f"{statistics.median(rates['raw CEL']):.0f} proposals/s",
            )
        ],
    )


if __name__ == "__main__":
    main()
