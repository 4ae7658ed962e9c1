-- The Slack app's replay memory, shared by every `charter slack` process: a restarted or a
-- second process refuses a signed request already seen inside the signature's window.
-- Requests arrive before any tenant is known, so the memory lives in the owner's schema,
-- under forced RLS with an owner-only policy, and the application reaches it only through
-- one definer function that records a signature and says whether it was new.

CREATE TABLE charter_meta.slack_requests (
    signature   text PRIMARY KEY,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX slack_requests_expiry ON charter_meta.slack_requests (expires_at);
ALTER TABLE charter_meta.slack_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE charter_meta.slack_requests FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_only ON charter_meta.slack_requests TO charter_owner
    USING (true) WITH CHECK (true);

CREATE FUNCTION charter.slack_request_first_seen(p_signature text, p_expires_at timestamptz)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_inserted integer;
BEGIN
    DELETE FROM charter_meta.slack_requests WHERE expires_at < now();
    INSERT INTO charter_meta.slack_requests (signature, expires_at)
        VALUES (p_signature, p_expires_at) ON CONFLICT (signature) DO NOTHING;
    GET DIAGNOSTICS v_inserted = ROW_COUNT;
    RETURN v_inserted = 1;
END;
$$;
REVOKE ALL ON FUNCTION charter.slack_request_first_seen(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION charter.slack_request_first_seen(text, timestamptz) TO charter_app;
