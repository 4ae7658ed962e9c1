-- An approval covers exactly the facts it was shown. When a decisive fact changes between
-- the approval and the execution, the act opens a new exception for the same proposal and
-- the decisions on the old one stop counting: they are marked superseded by the new
-- exception (kept, for the audit trail), and the same members may decide again.
-- Only that column is writable by the application (and it sets it only where it is NULL).

ALTER TABLE charter.decisions ADD COLUMN superseded_by text;
ALTER TABLE charter.decisions DROP CONSTRAINT decisions_pkey;
CREATE UNIQUE INDEX decisions_in_force ON charter.decisions
    (tenant_id, workflow_id, proposal_id, approver) WHERE superseded_by IS NULL;

GRANT UPDATE (superseded_by) ON charter.decisions TO charter_app;
-- One policy per command the application holds (a grant without one is refused by RLS).
CREATE POLICY tenant_update ON charter.decisions FOR UPDATE
    USING (tenant_id = current_setting('charter.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('charter.tenant_id', true));

-- A proposal may so have several exceptions over time, one open at a time.
ALTER TABLE charter.exceptions DROP CONSTRAINT exceptions_tenant_id_workflow_id_proposal_id_key;
CREATE UNIQUE INDEX exceptions_one_open ON charter.exceptions (tenant_id, workflow_id, proposal_id)
    WHERE status = 'open';
CREATE INDEX exceptions_of_proposal ON charter.exceptions (tenant_id, workflow_id, proposal_id);