-- Review r1: record_decision and act look up a run's `run_started` entry (who requested the
-- run) to refuse self-approval from the database. Without an index that is a scan of the
-- tenant's whole audit trail per decision.
CREATE INDEX audit_entries_run ON charter.audit_entries (tenant_id, workflow_id, kind);
