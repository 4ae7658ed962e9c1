-- Passkeys: a member's WebAuthn credential as a key kind of its own (`webauthn`), enrolled
-- through a one-time invitation the owner creates.
--
-- The application role still never writes a key: the web inbox enrols a passkey only through
-- one definer function that consumes an unused, unexpired invitation (created by the owner
-- role, stored as the sha256 of its token) for an active member, and registers the credential
-- for exactly that member. A passkey's public key is its COSE key; its relying party id and
-- origin are recorded with it, since every assertion it signs is verified against them.

ALTER TABLE charter.member_keys
    DROP CONSTRAINT member_keys_kind_check,
    DROP CONSTRAINT member_keys_public_key_check,
    DROP CONSTRAINT member_keys_check,
    ADD COLUMN credential_id text CHECK (
        credential_id ~ '^[A-Za-z0-9_-]+$' AND length(credential_id) BETWEEN 16 AND 1366
    ),
    ADD COLUMN rp_id text CHECK (rp_id ~ '^[a-z0-9.-]+$' AND length(rp_id) <= 253),
    ADD COLUMN origin text CHECK (origin ~ '^https?://[a-z0-9.-]+(:[0-9]{1,5})?$'),
    ADD CONSTRAINT member_keys_kind_check CHECK (kind IN ('member', 'front_door', 'webauthn')),
    ADD CONSTRAINT member_keys_public_key_check CHECK (
        public_key ~ '^[0-9a-f]{64}$'
        OR (kind = 'webauthn' AND public_key ~ '^[0-9a-f]+$' AND length(public_key) <= 2048)
    ),
    -- A member's own key or passkey belongs to one member.
    ADD CONSTRAINT member_keys_check CHECK ((kind IN ('member', 'webauthn')) = (member_id IS NOT NULL)),
    ADD CONSTRAINT member_keys_passkey_check CHECK (
        (kind = 'webauthn') = (credential_id IS NOT NULL AND rp_id IS NOT NULL AND origin IS NOT NULL)
    );
CREATE UNIQUE INDEX member_keys_credential ON charter.member_keys (tenant_id, credential_id);

-- The guard of 014 (a revocation recorded once; a routine one may be raised to for cause),
-- with the passkey's columns as unchangeable as the rest of the key.
CREATE OR REPLACE FUNCTION charter.guard_member_key() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.tenant_id = OLD.tenant_id AND NEW.key_id = OLD.key_id
        AND NEW.kind = OLD.kind AND NEW.member_id IS NOT DISTINCT FROM OLD.member_id
        AND NEW.front_door IS NOT DISTINCT FROM OLD.front_door
        AND NEW.public_key = OLD.public_key AND NEW.registered_by = OLD.registered_by
        AND NEW.registered_at = OLD.registered_at
        AND NEW.credential_id IS NOT DISTINCT FROM OLD.credential_id
        AND NEW.rp_id IS NOT DISTINCT FROM OLD.rp_id
        AND NEW.origin IS NOT DISTINCT FROM OLD.origin THEN
        IF OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL THEN
            RETURN NEW;
        END IF;
        IF OLD.revoked_at IS NOT NULL AND NEW.revoked_at = OLD.revoked_at
            AND NOT OLD.revoked_for_cause AND NEW.revoked_for_cause THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'charter.member_keys only records revocations: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TABLE charter.passkey_invitations (
    tenant_id    text NOT NULL REFERENCES charter.tenants,
    token_hash   text NOT NULL CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    member_id    text NOT NULL,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    key_id       text,
    PRIMARY KEY (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, member_id) REFERENCES charter.members (tenant_id, member_id),
    CHECK (expires_at > created_at AND expires_at <= created_at + interval '7 days'),
    CHECK ((used_at IS NULL) = (key_id IS NULL))
);
ALTER TABLE charter.passkey_invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE charter.passkey_invitations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_select ON charter.passkey_invitations FOR SELECT
    USING (tenant_id = current_setting('charter.tenant_id', true));
CREATE POLICY owner_invites ON charter.passkey_invitations FOR INSERT TO charter_owner
    WITH CHECK (tenant_id = current_setting('charter.tenant_id', true));
CREATE POLICY owner_consumes ON charter.passkey_invitations FOR UPDATE TO charter_owner
    USING (tenant_id = current_setting('charter.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('charter.tenant_id', true));
REVOKE ALL ON charter.passkey_invitations FROM PUBLIC;
GRANT SELECT ON charter.passkey_invitations TO charter_app;

-- The one way the application registers a key: consume the invitation and register the
-- passkey for its member, in the caller's tenant transaction. NULL when the invitation is
-- unknown, used, expired, or its member no longer active (nothing changes then).
CREATE FUNCTION charter.enrol_passkey(
    p_token_hash text, p_key_id text, p_public_key text, p_credential_id text,
    p_rp_id text, p_origin text
) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_tenant text := current_setting('charter.tenant_id', true);
    v_invitation charter.passkey_invitations%ROWTYPE;
BEGIN
    SELECT * INTO v_invitation FROM charter.passkey_invitations
        WHERE tenant_id = v_tenant AND token_hash = p_token_hash FOR UPDATE;
    IF NOT FOUND OR v_invitation.used_at IS NOT NULL OR v_invitation.expires_at <= now()
        OR NOT EXISTS (SELECT 1 FROM charter.members WHERE tenant_id = v_tenant
                       AND member_id = v_invitation.member_id AND active) THEN
        RETURN NULL;
    END IF;
    INSERT INTO charter.member_keys (tenant_id, key_id, kind, member_id, public_key,
        registered_by, credential_id, rp_id, origin)
        VALUES (v_tenant, p_key_id, 'webauthn', v_invitation.member_id, p_public_key,
        'invitation:' || v_invitation.created_by, p_credential_id, p_rp_id, p_origin);
    UPDATE charter.passkey_invitations SET used_at = now(), key_id = p_key_id
        WHERE tenant_id = v_tenant AND token_hash = p_token_hash;
    RETURN v_invitation.member_id;
END;
$$;
REVOKE ALL ON FUNCTION charter.enrol_passkey(text, text, text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION charter.enrol_passkey(text, text, text, text, text, text) TO charter_app;
