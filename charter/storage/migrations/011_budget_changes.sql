-- Charter's own record of the campaign budget changes it executed, written by the demo
-- books' writer in the transaction of the change. It keeps the budget each change replaced,
-- so that a rule can bound the cumulative change over a window (`campaign.budget_7d_ago`):
-- +25% per run would otherwise compound (400 -> 500 -> 625 -> 781.25). Append-only.

CREATE TABLE charter.budget_changes (
    tenant_id        text NOT NULL REFERENCES charter.tenants,
    idempotency_key  text NOT NULL,
    campaign_id      text NOT NULL,
    budget_before    numeric NOT NULL,
    budget_after     numeric NOT NULL,
    executed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, idempotency_key)
);
CREATE INDEX budget_changes_of_campaign ON charter.budget_changes
    (tenant_id, campaign_id, executed_at);

ALTER TABLE charter.budget_changes ENABLE ROW LEVEL SECURITY;
ALTER TABLE charter.budget_changes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_select ON charter.budget_changes FOR SELECT
    USING (tenant_id = current_setting('charter.tenant_id', true));
CREATE POLICY tenant_insert ON charter.budget_changes FOR INSERT
    WITH CHECK (tenant_id = current_setting('charter.tenant_id', true));

GRANT SELECT, INSERT ON charter.budget_changes TO charter_app;
