"""PostgreSQL storage: migrations, tenant-scoped transactions, the audit trail."""

from charter.storage.db import Database, TenantRequired
from charter.storage.migrate import migrate
from charter.storage.server_checks import UnsafeServer

__all__ = ["Database", "TenantRequired", "UnsafeServer", "migrate"]
