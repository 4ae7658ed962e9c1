-- Approve-with-edit: the parameters an approver changed, with the gate's verdict on them.
-- The act activity authorises an edited proposal only against a row here (bound by digest)
-- and approvals of exactly that digest. Append-only for the application.

CREATE TABLE charter.proposal_edits (
    tenant_id        text NOT NULL REFERENCES charter.tenants,
    workflow_id      text NOT NULL,
    proposal_id      text NOT NULL,
    proposal_digest  text NOT NULL,
    proposal         jsonb NOT NULL,
    verdict          jsonb NOT NULL,
    edited_by        text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, workflow_id, proposal_id, proposal_digest),
    FOREIGN KEY (tenant_id, workflow_id, proposal_id)
        REFERENCES charter.proposals (tenant_id, workflow_id, proposal_id)
);

ALTER TABLE charter.proposal_edits ENABLE ROW LEVEL SECURITY;
ALTER TABLE charter.proposal_edits FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON charter.proposal_edits
    USING (tenant_id = current_setting('charter.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('charter.tenant_id', true));

GRANT SELECT, INSERT ON charter.proposal_edits TO charter_app;
