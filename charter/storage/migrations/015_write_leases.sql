-- Who is writing a record at a provider right now. The act claims a lease on the record it
-- writes (a bill, say) in the transaction of its write intent and commits it; it then calls
-- the provider with no transaction open, renewing the lease's expiry as it waits, and
-- records the result in a new transaction that checks the lease. Another attempt at the same
-- record waits while the lease is live and takes it over once it has expired: the write's
-- idempotency key makes a takeover safe. No row lock is ever held across a provider call.

CREATE TABLE charter.write_leases (
    tenant_id        text NOT NULL REFERENCES charter.tenants,
    subject          text NOT NULL,
    idempotency_key  text NOT NULL,
    holder           text NOT NULL,
    state            text NOT NULL CHECK (state IN ('claimed', 'done', 'released')),
    claimed_at       timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    taken_over_from  text,
    PRIMARY KEY (tenant_id, subject)
);

ALTER TABLE charter.write_leases ENABLE ROW LEVEL SECURITY;
ALTER TABLE charter.write_leases FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON charter.write_leases
    USING (tenant_id = current_setting('charter.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('charter.tenant_id', true));

GRANT SELECT, INSERT, UPDATE ON charter.write_leases TO charter_app;
