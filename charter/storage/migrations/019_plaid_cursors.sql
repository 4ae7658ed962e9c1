-- Where a tenant's Plaid /transactions/sync stands for each Item: the cursor of the last
-- completed sync and the transactions it had reached then (by transaction_id), so the next
-- read asks Plaid only for what changed since. Read in a transaction of its own before the
-- provider is called, written in another after it answered, and only if no other read
-- moved the cursor meanwhile (compare and set on `cursor`).

CREATE TABLE charter.plaid_cursors (
    tenant_id     text NOT NULL REFERENCES charter.tenants,
    item_id       text NOT NULL,
    cursor        text NOT NULL,
    transactions  jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, item_id)
);

ALTER TABLE charter.plaid_cursors ENABLE ROW LEVEL SECURITY;
ALTER TABLE charter.plaid_cursors FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON charter.plaid_cursors
    USING (tenant_id = current_setting('charter.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('charter.tenant_id', true));

GRANT SELECT, INSERT, UPDATE ON charter.plaid_cursors TO charter_app;
