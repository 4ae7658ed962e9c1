-- The application role reads the law and the roster; it cannot write them. A stolen worker
-- (the application role's credentials) must not be able to make a constitution version,
-- add a member, change a role or a Slack id, or revive, back-date or re-bind a decision.
--
-- * members and constitutions: SELECT only for the application (member keys already are).
--   Versions the owner makes (`charter constitution apply`, the seed) go through the owner
--   role on the administrator connection; the one version the worker makes, an amendment
--   from an approval, goes through a definer function that marks it as an amendment, and
--   `act` verifies such a version against the signed decision it came from.
-- * decisions: the database stamps when a decision was recorded, and a supersession is
--   never undone, so `act` can check a statement's validity window against a time the
--   application cannot choose, and a superseded approval stays superseded.
-- * exceptions: the database stamps when one was opened, and what it is about never
--   changes, so an approval signed before its exception opened cannot be counted for it.
-- * member keys: a routine revocation can be raised to one for cause.
-- * the Slack replay memory: the server clamps how long a row is kept.

REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON charter.members, charter.constitutions
    FROM charter_app;

ALTER TABLE charter.constitutions ADD COLUMN made_by text NOT NULL DEFAULT 'owner'
    CHECK (made_by IN ('owner', 'amendment'));

CREATE FUNCTION charter.save_amendment_version(
    p_tenant_id text, p_version integer, p_content_hash text, p_document jsonb,
    p_source text, p_created_by text, p_note text
) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_latest integer;
BEGIN
    IF p_tenant_id IS DISTINCT FROM current_setting('charter.tenant_id', true) THEN
        RAISE EXCEPTION 'an amendment is saved for the transaction''s tenant only'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT max(version) INTO v_latest FROM charter.constitutions WHERE tenant_id = p_tenant_id;
    IF v_latest IS NULL OR p_version <> v_latest + 1 THEN
        RAISE EXCEPTION 'an amendment is the next version after the latest one'
            USING ERRCODE = 'check_violation';
    END IF;
    INSERT INTO charter.constitutions (tenant_id, version, content_hash, document, source,
        created_by, note, made_by)
        VALUES (p_tenant_id, p_version, p_content_hash, p_document, p_source, p_created_by,
            p_note, 'amendment');
END;
$$;
REVOKE ALL ON FUNCTION charter.save_amendment_version(text, integer, text, jsonb, text, text, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION charter.save_amendment_version(text, integer, text, jsonb, text, text, text)
    TO charter_app;

-- Decisions: recorded at the database's time; only a supersession may change, once.
CREATE FUNCTION charter.guard_decision() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.decided_at := now();
        RETURN NEW;
    END IF;
    IF OLD.superseded_by IS NULL AND NEW.superseded_by IS NOT NULL
        AND (to_jsonb(NEW) - 'superseded_by') = (to_jsonb(OLD) - 'superseded_by') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'charter.decisions only records a supersession, once: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER decisions_guarded
    BEFORE INSERT OR UPDATE ON charter.decisions
    FOR EACH ROW EXECUTE FUNCTION charter.guard_decision();

-- Exceptions: opened at the database's time; what one is about never changes.
CREATE FUNCTION charter.guard_exception() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.opened_at := now();
        RETURN NEW;
    END IF;
    IF NEW.tenant_id = OLD.tenant_id AND NEW.exception_id = OLD.exception_id
        AND NEW.workflow_id = OLD.workflow_id AND NEW.proposal_id = OLD.proposal_id
        AND NEW.opened_at = OLD.opened_at AND NEW.context = OLD.context THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'an exception''s subject and opening never change'
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER exceptions_guarded
    BEFORE INSERT OR UPDATE ON charter.exceptions
    FOR EACH ROW EXECUTE FUNCTION charter.guard_exception();

-- Member keys: a revocation records when and whether for cause; a routine one may later be
-- raised to for cause (and nothing else about the key changes, ever).
CREATE OR REPLACE FUNCTION charter.guard_member_key() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.tenant_id = OLD.tenant_id AND NEW.key_id = OLD.key_id
        AND NEW.kind = OLD.kind AND NEW.member_id IS NOT DISTINCT FROM OLD.member_id
        AND NEW.front_door IS NOT DISTINCT FROM OLD.front_door
        AND NEW.public_key = OLD.public_key AND NEW.registered_by = OLD.registered_by
        AND NEW.registered_at = OLD.registered_at THEN
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

-- The Slack replay memory keeps a row no longer than a signature's window and a margin,
-- whatever expiry the caller asks for.
CREATE OR REPLACE FUNCTION charter.slack_request_first_seen(p_signature text, p_expires_at timestamptz)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_inserted integer;
BEGIN
    DELETE FROM charter_meta.slack_requests WHERE expires_at < now();
    INSERT INTO charter_meta.slack_requests (signature, expires_at)
        VALUES (p_signature, LEAST(p_expires_at, now() + interval '15 minutes'))
        ON CONFLICT (signature) DO NOTHING;
    GET DIAGNOSTICS v_inserted = ROW_COUNT;
    RETURN v_inserted = 1;
END;
$$;
