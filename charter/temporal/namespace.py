"""Creating Charter's namespace on a self-hosted Temporal, where the client may.

Temporal Cloud namespaces are created in Cloud's own console or API, and a self-hosted
cluster may reserve namespace creation to its administrators: either way the server refuses
and the caller reports it, leaving the namespace to whoever owns the cluster.
"""

from __future__ import annotations

from datetime import timedelta

from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode


async def ensure_namespace(client: Client, retention: timedelta) -> bool:
    """Create the client's namespace unless it exists; True when it was created now."""
    try:
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=client.namespace)
        )
        return False
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
    period = Duration()
    period.FromTimedelta(retention)
    try:
        await client.workflow_service.register_namespace(
            RegisterNamespaceRequest(
                namespace=client.namespace, workflow_execution_retention_period=period
            )
        )
    except RPCError as refused:
        if refused.status == RPCStatusCode.ALREADY_EXISTS:  # created meanwhile by another setup
            return False
        raise
    return True
