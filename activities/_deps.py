"""What activities need from the outside world, injected by the worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from charter.config.settings import DEFAULT_MAX_OBSERVATION_AGE
from charter.connectors.calls import worker_bulkheads
from charter.crypto.anchors import TrustAnchors
from charter.notify.notifier import Notifier, NullNotifier
from charter.reasoners import Reasoner, RetryBudget
from charter.runtime.bulkheads import Bulkheads
from charter.services.audit_verification import SigningKeySource
from charter.storage import Database
from charter.storage.credential_vault import CredentialVault


@dataclass(frozen=True)
class Deps:
    db: Database
    reasoner: Reasoner
    #: Decrypts connector credentials; each activity takes only the scope it may use. Built
    #: by the entry point from its settings (the KEK provider they name).
    credentials: CredentialVault
    #: When an unavailable model stops being retried and the run escalates instead.
    reasoner_budget: RetryBudget = field(default_factory=RetryBudget)
    notifier: Notifier = field(default_factory=NullNotifier)
    """Told about exceptions after each activity's transaction commits (Slack, or nothing)."""
    #: The oldest observation an autonomous action may still execute on (`Settings`).
    max_observation_age: timedelta = DEFAULT_MAX_OBSERVATION_AGE
    #: How often one proposal may be sent back to humans before it closes as unstable.
    max_send_backs: int = 3
    #: Signs audit checkpoints (`AuditCheckpoint`): the worker's key from its environment or
    #: state directory, never the database nor history. None: checkpoints are refused.
    audit_signing: SigningKeySource | None = None
    #: Per provider, the calls this worker makes at once, their deadline and the circuit
    #: breaker (`charter.runtime.bulkheads`): one per worker, shared by every activity.
    bulkheads: Bulkheads = field(default_factory=worker_bulkheads)
    #: Each tenant's first owner keys, pinned in the worker's configuration: `act` refuses
    #: while an owner key in the database is not listed. None: none configured (not checked).
    trust_anchors: TrustAnchors | None = None
