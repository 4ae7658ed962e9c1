"""PostgreSQL storage: migrations, tenant-scoped transactions, the audit trail."""

from charter.storage.db import Database, TenantRequired
from charter.storage.migrate import migrate

__all__ = ["Database", "TenantRequired", "migrate"]
