-- Which connector serves each capability of a tenant. A tenant without a row for a
-- capability is served by the demo books, so the demo company needs no configuration.
-- Settings hold identifiers and addresses only (organisation id, account ids, base URL);
-- secrets live in charter.credentials, encrypted, read and write scopes apart.
CREATE TABLE charter.connectors (
    tenant_id   text NOT NULL REFERENCES charter.tenants,
    capability  text NOT NULL CHECK (capability IN ('bank', 'bills', 'payments')),
    provider    text NOT NULL CHECK (provider ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    settings    jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(settings) = 'object'),
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, capability)
);

ALTER TABLE charter.connectors ENABLE ROW LEVEL SECURITY;
ALTER TABLE charter.connectors FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON charter.connectors
    USING (tenant_id = current_setting('charter.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('charter.tenant_id', true));

-- Removing a connector hands its capability back to the demo books; the audit trail keeps
-- who configured and removed what.
GRANT SELECT, INSERT, UPDATE, DELETE ON charter.connectors TO charter_app;
