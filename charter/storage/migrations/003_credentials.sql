-- Connector credentials, envelope-encrypted (charter/crypto/envelope.py). The database
-- holds only ciphertext, the nonce, the tag and the data key wrapped by a key-encryption
-- key that lives outside it; a revoked credential's ciphertext is erased (crypto-shredded).
CREATE TABLE charter.credentials (
    tenant_id      text NOT NULL REFERENCES charter.tenants,
    credential_id  text NOT NULL CHECK (credential_id ~ '^cred-[a-z0-9]{4,40}$'),
    connector      text NOT NULL CHECK (connector ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    scope          text NOT NULL CHECK (scope IN ('read', 'write')),
    kind           text NOT NULL CHECK (kind IN ('api_key', 'oauth')),
    label          text NOT NULL DEFAULT '',
    kek_version    integer,
    wrapped_key    bytea,
    nonce          bytea,
    ciphertext     bytea,
    tag            bytea,
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz,
    PRIMARY KEY (tenant_id, credential_id),
    -- Active records carry every part of the envelope; revoked ones carry none.
    CHECK (revoked_at IS NOT NULL OR (kek_version IS NOT NULL AND wrapped_key IS NOT NULL
        AND nonce IS NOT NULL AND ciphertext IS NOT NULL AND tag IS NOT NULL)),
    CHECK (revoked_at IS NULL OR (kek_version IS NULL AND wrapped_key IS NULL
        AND nonce IS NULL AND ciphertext IS NULL AND tag IS NULL))
);

CREATE INDEX credentials_lookup ON charter.credentials (tenant_id, connector, scope)
    WHERE revoked_at IS NULL;

ALTER TABLE charter.credentials ENABLE ROW LEVEL SECURITY;
ALTER TABLE charter.credentials FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON charter.credentials
    USING (tenant_id = current_setting('charter.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('charter.tenant_id', true));

-- No DELETE: a credential is revoked (and shredded), never silently removed.
GRANT SELECT, INSERT ON charter.credentials TO charter_app;
GRANT UPDATE (kek_version, wrapped_key, nonce, ciphertext, tag, updated_at, revoked_at)
    ON charter.credentials TO charter_app;
