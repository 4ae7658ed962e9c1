-- Charter core schema. Runs as charter_owner (SET ROLE by the migrator), so the owner
-- owns every object and the application role owns nothing.

CREATE TABLE charter.tenants (
    tenant_id   text PRIMARY KEY CHECK (tenant_id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE charter.members (
    tenant_id      text NOT NULL REFERENCES charter.tenants,
    member_id      text NOT NULL,
    display_name   text NOT NULL,
    roles          text[] NOT NULL DEFAULT '{}',
    slack_user_id  text,
    active         boolean NOT NULL DEFAULT true,
    PRIMARY KEY (tenant_id, member_id)
);

CREATE TABLE charter.constitutions (
    tenant_id     text NOT NULL REFERENCES charter.tenants,
    version       integer NOT NULL CHECK (version >= 1),
    content_hash  text NOT NULL,
    document      jsonb NOT NULL,
    source        text NOT NULL,
    created_by    text NOT NULL,
    note          text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, version)
);

CREATE TABLE charter.proposals (
    tenant_id             text NOT NULL REFERENCES charter.tenants,
    workflow_id           text NOT NULL,
    proposal_id           text NOT NULL,
    run_id                text NOT NULL,
    agent                 text NOT NULL,
    action                text NOT NULL,
    proposal              jsonb NOT NULL,
    verdict               jsonb NOT NULL,
    outcome               text NOT NULL CHECK (outcome IN ('execute', 'escalate', 'deny')),
    constitution_version  integer NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, workflow_id, proposal_id)
);

CREATE TABLE charter.exceptions (
    tenant_id     text NOT NULL REFERENCES charter.tenants,
    exception_id  text NOT NULL,
    workflow_id   text NOT NULL,
    proposal_id   text NOT NULL,
    agent         text NOT NULL,
    status        text NOT NULL CHECK (status IN ('open', 'approved', 'rejected', 'expired')),
    context       jsonb NOT NULL,
    opened_at     timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    closed_at     timestamptz,
    PRIMARY KEY (tenant_id, exception_id),
    UNIQUE (tenant_id, workflow_id, proposal_id)
);

CREATE TABLE charter.decisions (
    tenant_id          text NOT NULL REFERENCES charter.tenants,
    workflow_id        text NOT NULL,
    proposal_id        text NOT NULL,
    approver           text NOT NULL,
    outcome            text NOT NULL CHECK (outcome IN ('approve', 'reject')),
    reason             text NOT NULL DEFAULT '',
    proposal_digest    text NOT NULL,
    amendment_version  integer,
    decided_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, workflow_id, proposal_id, approver)
);

CREATE TABLE charter.actions (
    tenant_id        text NOT NULL REFERENCES charter.tenants,
    idempotency_key  text NOT NULL,
    workflow_id      text NOT NULL,
    proposal_id      text NOT NULL,
    action           text NOT NULL,
    proposal         jsonb NOT NULL,
    authorisation    jsonb NOT NULL,
    connector_reference text NOT NULL,
    executed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, idempotency_key)
);

-- The demo company's books, read through the demo connector.
CREATE TABLE charter.bank_accounts (
    tenant_id   text NOT NULL REFERENCES charter.tenants,
    account_id  text NOT NULL,
    name        text NOT NULL,
    currency    text NOT NULL DEFAULT 'USD',
    balance     numeric(14, 2) NOT NULL,
    PRIMARY KEY (tenant_id, account_id)
);

CREATE TABLE charter.vendors (
    tenant_id            text NOT NULL REFERENCES charter.tenants,
    vendor_id            text NOT NULL,
    name                 text NOT NULL,
    verified             boolean NOT NULL DEFAULT false,
    monthly_spend_limit  numeric(14, 2),
    PRIMARY KEY (tenant_id, vendor_id)
);

CREATE TABLE charter.invoices (
    tenant_id   text NOT NULL REFERENCES charter.tenants,
    invoice_id  text NOT NULL,
    vendor_id   text NOT NULL,
    amount      numeric(14, 2) NOT NULL CHECK (amount >= 0),
    currency    text NOT NULL DEFAULT 'USD',
    due_date    date NOT NULL,
    status      text NOT NULL CHECK (status IN ('open', 'scheduled', 'paid', 'void')),
    memo        text NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, invoice_id),
    FOREIGN KEY (tenant_id, vendor_id) REFERENCES charter.vendors (tenant_id, vendor_id)
);

CREATE TABLE charter.payments (
    tenant_id    text NOT NULL REFERENCES charter.tenants,
    payment_id   text NOT NULL,
    account_id   text NOT NULL,
    invoice_id   text,
    counterparty text NOT NULL,
    amount       numeric(14, 2) NOT NULL,
    status       text NOT NULL CHECK (status IN ('scheduled', 'settled')),
    value_date   date NOT NULL,
    PRIMARY KEY (tenant_id, payment_id)
);

CREATE TABLE charter.payroll_runs (
    tenant_id       text NOT NULL REFERENCES charter.tenants,
    payroll_run_id  text NOT NULL,
    period          text NOT NULL,
    employee_count  integer NOT NULL,
    total           numeric(14, 2) NOT NULL,
    pay_date        date NOT NULL,
    status          text NOT NULL CHECK (status IN ('draft', 'submitted', 'paid')),
    PRIMARY KEY (tenant_id, payroll_run_id)
);

CREATE TABLE charter.ad_campaigns (
    tenant_id     text NOT NULL REFERENCES charter.tenants,
    campaign_id   text NOT NULL,
    name          text NOT NULL,
    platform      text NOT NULL,
    daily_budget  numeric(14, 2) NOT NULL,
    spend_7d      numeric(14, 2) NOT NULL,
    revenue_7d    numeric(14, 2) NOT NULL,
    status        text NOT NULL CHECK (status IN ('active', 'paused')),
    PRIMARY KEY (tenant_id, campaign_id)
);

-- The audit trail: append-only, hash-chained per tenant.
CREATE TABLE charter.audit_entries (
    tenant_id    text NOT NULL REFERENCES charter.tenants,
    seq          bigint NOT NULL CHECK (seq >= 1),
    kind         text NOT NULL,
    occurred_at  text NOT NULL,   -- ISO 8601 text exactly as hashed
    workflow_id  text,
    run_id       text,
    actor        text NOT NULL,
    snapshot     jsonb NOT NULL,
    prev_hash    text NOT NULL,
    hash         text NOT NULL,
    PRIMARY KEY (tenant_id, seq),
    UNIQUE (tenant_id, hash)
);

-- One row per tenant: the chain head. Locking it serialises appends within a tenant
-- while different tenants append in parallel.
CREATE TABLE charter.audit_heads (
    tenant_id  text PRIMARY KEY REFERENCES charter.tenants,
    seq        bigint NOT NULL,
    hash       text NOT NULL
);

CREATE FUNCTION charter.refuse_audit_rewrite() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    RAISE EXCEPTION 'charter.audit_entries is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_entries_no_update_delete
    BEFORE UPDATE OR DELETE ON charter.audit_entries
    FOR EACH ROW EXECUTE FUNCTION charter.refuse_audit_rewrite();
CREATE TRIGGER audit_entries_no_truncate
    BEFORE TRUNCATE ON charter.audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION charter.refuse_audit_rewrite();

-- Row-level security: every table, enabled and forced, keyed on the per-transaction
-- setting charter.tenant_id. With no tenant set, current_setting(..., true) is NULL or ''
-- and no row matches.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenants', 'members', 'constitutions', 'proposals', 'exceptions',
        'decisions', 'actions', 'bank_accounts', 'vendors', 'invoices', 'payments',
        'payroll_runs', 'ad_campaigns', 'audit_entries', 'audit_heads']
    LOOP
        EXECUTE format('ALTER TABLE charter.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE charter.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON charter.%I USING '
            '(tenant_id = current_setting(''charter.tenant_id'', true)) WITH CHECK '
            '(tenant_id = current_setting(''charter.tenant_id'', true))', t);
    END LOOP;
END;
$$;

-- Grants: the application role gets exactly what the code paths need.
GRANT USAGE ON SCHEMA charter TO charter_app;
GRANT SELECT, INSERT ON charter.tenants, charter.constitutions, charter.proposals,
    charter.decisions, charter.actions, charter.audit_entries TO charter_app;
GRANT SELECT, INSERT, UPDATE ON charter.members, charter.exceptions, charter.audit_heads,
    charter.bank_accounts, charter.vendors, charter.invoices, charter.payments,
    charter.payroll_runs, charter.ad_campaigns TO charter_app;
GRANT DELETE ON charter.members, charter.bank_accounts, charter.vendors, charter.invoices,
    charter.payments, charter.payroll_runs, charter.ad_campaigns TO charter_app;

-- Tenant discovery for operator commands (audit verify over every tenant): returns ids
-- only, runs with the owner's rights, and pins its search_path.
CREATE FUNCTION charter.tenant_ids() RETURNS SETOF text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
    SELECT tenant_id FROM charter.tenants ORDER BY tenant_id
$$;
REVOKE ALL ON FUNCTION charter.tenant_ids() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION charter.tenant_ids() TO charter_app;

-- FORCE ROW LEVEL SECURITY binds the owner too, so the definer function above needs its
-- own narrow policy: the owner may read tenant rows (ids and names), nothing else.
CREATE POLICY owner_lists_tenants ON charter.tenants FOR SELECT TO charter_owner USING (true);
