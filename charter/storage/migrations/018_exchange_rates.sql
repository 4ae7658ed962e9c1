-- A tenant's exchange rates: what one unit of a currency is worth in another, as a named
-- source quoted it and when. The read activity records them in each observation, and the
-- limits convert spend and proposals in other currencies with what the run recorded (a
-- missing or stale rate leaves an amount uncounted, so it goes to a human). Only the owner
-- role writes them (`charter rates set`, audited): a stolen application role that could
-- quote a currency at nothing could carry spend in it past every limit.
CREATE TABLE charter.exchange_rates (
    tenant_id    text NOT NULL REFERENCES charter.tenants,
    currency     text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    base         text NOT NULL CHECK (base ~ '^[A-Z]{3}$' AND base <> currency),
    rate         numeric NOT NULL CHECK (rate > 0),
    source       text NOT NULL CHECK (length(source) BETWEEN 1 AND 200),
    as_of        timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, currency, base)
);

ALTER TABLE charter.exchange_rates ENABLE ROW LEVEL SECURITY;
ALTER TABLE charter.exchange_rates FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON charter.exchange_rates
    USING (tenant_id = current_setting('charter.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('charter.tenant_id', true));

GRANT SELECT ON charter.exchange_rates TO charter_app;
