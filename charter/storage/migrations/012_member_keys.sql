-- Approvals that prove who decided: members' public keys, and the signed statement each
-- decision carries.
--
-- A key is registered or revoked by the owner role only (the administrator connection
-- SETs ROLE to it): the application role may read public keys to verify signatures, never
-- write one, so a compromised worker cannot enrol a key of its own and sign as a member.
-- Keys are never deleted nor changed: a revocation records when and whether for cause, so
-- a statement signed before a routine revocation still verifies and one signed with a key
-- revoked for cause never does.

CREATE TABLE charter.member_keys (
    tenant_id          text NOT NULL REFERENCES charter.tenants,
    key_id             text NOT NULL CHECK (key_id ~ '^mk-[0-9a-f]{16}$'),
    kind               text NOT NULL CHECK (kind IN ('member', 'front_door')),
    member_id          text,
    front_door         text CHECK (front_door ~ '^[a-z][a-z0-9_-]{0,30}$'),
    public_key         text NOT NULL CHECK (public_key ~ '^[0-9a-f]{64}$'),
    registered_by      text NOT NULL,
    registered_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at         timestamptz,
    revoked_for_cause  boolean NOT NULL DEFAULT false,
    revoke_reason      text NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, key_id),
    -- A member key belongs to one member; a front-door key to one front door (slack, ...).
    CHECK ((kind = 'member') = (member_id IS NOT NULL)),
    CHECK ((kind = 'front_door') = (front_door IS NOT NULL))
);

ALTER TABLE charter.member_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE charter.member_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_select ON charter.member_keys FOR SELECT
    USING (tenant_id = current_setting('charter.tenant_id', true));
CREATE POLICY owner_registers_key ON charter.member_keys FOR INSERT TO charter_owner
    WITH CHECK (tenant_id = current_setting('charter.tenant_id', true));
CREATE POLICY owner_revokes_key ON charter.member_keys FOR UPDATE TO charter_owner
    USING (tenant_id = current_setting('charter.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('charter.tenant_id', true));

REVOKE ALL ON charter.member_keys FROM PUBLIC;
GRANT SELECT ON charter.member_keys TO charter_app;

-- Even the owner only revokes: the key material, its member and registration never change,
-- a revocation is never undone, and no row is deleted or truncated.
CREATE FUNCTION charter.guard_member_key() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
        AND NEW.tenant_id = OLD.tenant_id AND NEW.key_id = OLD.key_id
        AND NEW.kind = OLD.kind AND NEW.member_id IS NOT DISTINCT FROM OLD.member_id
        AND NEW.front_door IS NOT DISTINCT FROM OLD.front_door
        AND NEW.public_key = OLD.public_key AND NEW.registered_by = OLD.registered_by
        AND NEW.registered_at = OLD.registered_at THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'charter.member_keys only records revocations: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER member_keys_revoke_only
    BEFORE UPDATE OR DELETE ON charter.member_keys
    FOR EACH ROW EXECUTE FUNCTION charter.guard_member_key();
CREATE TRIGGER member_keys_no_truncate
    BEFORE TRUNCATE ON charter.member_keys
    FOR EACH STATEMENT EXECUTE FUNCTION charter.guard_member_key();

-- Each decision keeps the exact statement its member signed and the signature; the nonce is
-- unique per tenant, so one statement can be recorded once only.
ALTER TABLE charter.decisions
    ADD COLUMN statement text,
    ADD COLUMN signature text,
    ADD COLUMN nonce text;
CREATE UNIQUE INDEX decisions_nonce ON charter.decisions (tenant_id, nonce);
