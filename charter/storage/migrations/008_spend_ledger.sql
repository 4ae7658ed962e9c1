-- Charter's own record of money committed by executed actions and live reservations: the
-- source of the `spend.*` facts and of limit enforcement. A row is reserved in the same
-- transaction as the action's write intent (under a per-tenant lock), becomes executed in
-- the transaction that records the action, or is released (once) when the action is
-- refused or fails for good. A reservation past `expires_at` no longer counts.

CREATE TABLE charter.spend_ledger (
    tenant_id        text NOT NULL REFERENCES charter.tenants,
    idempotency_key  text NOT NULL,
    workflow_id      text NOT NULL,
    proposal_id      text NOT NULL,
    agent            text NOT NULL,
    action           text NOT NULL,
    payee            text NOT NULL,
    amount           numeric NOT NULL CHECK (amount >= 0),
    currency         text NOT NULL,
    autonomous       boolean NOT NULL,
    state            text NOT NULL CHECK (state IN ('reserved', 'executed', 'released')),
    reserved_at      timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    executed_at      timestamptz,
    released_at      timestamptz,
    PRIMARY KEY (tenant_id, idempotency_key)
);

CREATE INDEX spend_ledger_recent ON charter.spend_ledger (tenant_id, reserved_at);

ALTER TABLE charter.spend_ledger ENABLE ROW LEVEL SECURITY;
ALTER TABLE charter.spend_ledger FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON charter.spend_ledger
    USING (tenant_id = current_setting('charter.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('charter.tenant_id', true));

GRANT SELECT, INSERT, UPDATE ON charter.spend_ledger TO charter_app;
