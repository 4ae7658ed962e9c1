-- Key canaries: one small ciphertext per kind of key (payload codec, key-encryption key),
-- written by the first process to start and decrypted by every process after it. A worker
-- given other keys than the rest refuses to start instead of encrypting what nobody else
-- can read. The canaries hold no secret: a fixed plaintext under the payload key, a random
-- data key wrapped under the KEK. They live in the owner's schema under forced RLS with an
-- owner-only policy; the application reads and writes them through two definer functions.

CREATE TABLE charter_meta.key_canaries (
    kind        text PRIMARY KEY CHECK (kind IN ('payload', 'kek')),
    key_id      text NOT NULL,
    sealed      bytea NOT NULL,
    written_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE charter_meta.key_canaries ENABLE ROW LEVEL SECURITY;
ALTER TABLE charter_meta.key_canaries FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_only ON charter_meta.key_canaries TO charter_owner
    USING (true) WITH CHECK (true);

CREATE FUNCTION charter.key_canary(p_kind text)
RETURNS TABLE (key_id text, sealed bytea)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.key_id, c.sealed FROM charter_meta.key_canaries c WHERE c.kind = p_kind;
$$;
REVOKE ALL ON FUNCTION charter.key_canary(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION charter.key_canary(text) TO charter_app;

-- Write the canary: the first one when none exists (p_replaces NULL), or a newer one in
-- place of the canary under key p_replaces (after a rotation); true when it was written.
CREATE FUNCTION charter.record_key_canary(
    p_kind text, p_key_id text, p_sealed bytea, p_replaces text
)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_written integer;
BEGIN
    IF p_replaces IS NULL THEN
        INSERT INTO charter_meta.key_canaries (kind, key_id, sealed)
            VALUES (p_kind, p_key_id, p_sealed) ON CONFLICT (kind) DO NOTHING;
    ELSE
        UPDATE charter_meta.key_canaries
            SET key_id = p_key_id, sealed = p_sealed, written_at = now()
            WHERE kind = p_kind AND key_id = p_replaces;
    END IF;
    GET DIAGNOSTICS v_written = ROW_COUNT;
    RETURN v_written = 1;
END;
$$;
REVOKE ALL ON FUNCTION charter.record_key_canary(text, text, bytea, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION charter.record_key_canary(text, text, bytea, text) TO charter_app;
