-- The bank's transactions as Plaid's /transactions/sync has delivered them, and where each
-- linked Item's sync stands. A read continues from the stored cursor and applies what was
-- added, modified and removed by transaction id, so one payment is one line however often
-- Plaid reports it. The cursor and the lines it led to are written together, in one short
-- transaction after the pages are fetched (no provider call inside it).
--
-- The application role writes these: they are a copy of what the bank said, which a stolen
-- application role could also make up by other means (its own Plaid credentials). A line
-- it invents can only make a bill look paid, which denies a payment; it cannot move money.
CREATE TABLE charter.bank_sync_cursors (
    tenant_id  text NOT NULL REFERENCES charter.tenants,
    item_id    text NOT NULL,
    cursor     text NOT NULL,
    synced_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, item_id)
);

CREATE TABLE charter.bank_transactions (
    tenant_id       text NOT NULL REFERENCES charter.tenants,
    item_id         text NOT NULL,
    transaction_id  text NOT NULL,
    account_id      text NOT NULL,
    amount          numeric NOT NULL,
    currency        text NOT NULL,
    description     text NOT NULL,
    booked_on       date NOT NULL,
    pending         boolean NOT NULL,
    PRIMARY KEY (tenant_id, item_id, transaction_id)
);

ALTER TABLE charter.bank_sync_cursors ENABLE ROW LEVEL SECURITY;
ALTER TABLE charter.bank_sync_cursors FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON charter.bank_sync_cursors
    USING (tenant_id = current_setting('charter.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('charter.tenant_id', true));
ALTER TABLE charter.bank_transactions ENABLE ROW LEVEL SECURITY;
ALTER TABLE charter.bank_transactions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON charter.bank_transactions
    USING (tenant_id = current_setting('charter.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('charter.tenant_id', true));

GRANT SELECT, INSERT, UPDATE, DELETE ON charter.bank_sync_cursors, charter.bank_transactions
    TO charter_app;
