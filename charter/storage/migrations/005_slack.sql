-- Slack approvals: where each tenant's exception cards go, and the card posted per exception.
-- Runs as charter_owner (SET ROLE by the migrator).

-- One row per tenant that decides in Slack. The backup approver is a member id, checked
-- when it is configured (no foreign key: a demo reset replaces the members table's rows).
CREATE TABLE charter.slack_tenants (
    tenant_id         text PRIMARY KEY REFERENCES charter.tenants,
    team_id           text CHECK (team_id ~ '^T[A-Z0-9]{2,30}$'),
    channel_id        text NOT NULL CHECK (channel_id ~ '^[CGD][A-Z0-9]{2,30}$'),
    backup_member_id  text,
    backup_after      interval CHECK (backup_after > interval '0'),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((backup_member_id IS NULL) = (backup_after IS NULL))
);

-- The card posted for an exception. The row is claimed before chat.postMessage, so a
-- retried activity (or two workers racing) never posts a second card; `message_ts` is set
-- once Slack answers. `opened_at` is Temporal's clock at escalation, so the backup delay is
-- measured on the same clock as the workflow's reminders (time-skipping included).
CREATE TABLE charter.slack_cards (
    tenant_id           text NOT NULL REFERENCES charter.tenants,
    exception_id        text NOT NULL,
    channel_id          text NOT NULL,
    message_ts          text,
    claimed_at          timestamptz,
    opened_at           timestamptz NOT NULL,
    backup_notified_at  timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, exception_id),
    UNIQUE (tenant_id, channel_id, message_ts),
    FOREIGN KEY (tenant_id, exception_id) REFERENCES charter.exceptions (tenant_id, exception_id)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['slack_tenants', 'slack_cards']
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

-- Configuration is written by `charter slack configure` as the application role; cards
-- are claimed, completed and released, never deleted.
GRANT SELECT, INSERT, UPDATE ON charter.slack_tenants, charter.slack_cards TO charter_app;
