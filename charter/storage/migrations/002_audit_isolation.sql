-- Isolation and audit hardening. Runs as charter_owner (SET ROLE by the migrator).
--
-- 1. Per-command policies instead of one FOR ALL policy: a table has a policy exactly for
--    each command the application is granted, so a grant added later without a policy is
--    refused by RLS (no policy = no row) and flagged by the catalog test.
-- 2. The audit trail can only be extended through charter.audit_append: the application
--    loses INSERT on audit_entries and every write on audit_heads, so it cannot choose an
--    entry's seq or prev_hash. The function locks the tenant's head row, links and inserts
--    in one statement (one round trip per append).
-- 3. UPDATE, DELETE and TRUNCATE are revoked from everyone on both audit tables, and the
--    head row may only move forward, even for the owner.

REVOKE ALL ON charter.audit_entries, charter.audit_heads FROM PUBLIC;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER
    ON charter.audit_entries, charter.audit_heads FROM charter_app;
GRANT SELECT ON charter.audit_entries, charter.audit_heads TO charter_app;

-- Replace every FOR ALL tenant policy with one policy per command the application holds.
DO $$
DECLARE
    t text;
    tenant_expr constant text := '(tenant_id = current_setting(''charter.tenant_id'', true))';
BEGIN
    FOR t IN
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'charter' AND c.relkind IN ('r', 'p') ORDER BY c.relname
    LOOP
        EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON charter.%I', t);
        -- SELECT for everyone the table is readable by (the audit function reads as owner).
        EXECUTE format('CREATE POLICY tenant_select ON charter.%I FOR SELECT USING %s', t, tenant_expr);
        IF has_table_privilege('charter_app', format('charter.%I', t), 'INSERT') THEN
            EXECUTE format('CREATE POLICY tenant_insert ON charter.%I FOR INSERT WITH CHECK %s',
                t, tenant_expr);
        END IF;
        IF has_table_privilege('charter_app', format('charter.%I', t), 'UPDATE') THEN
            EXECUTE format('CREATE POLICY tenant_update ON charter.%I FOR UPDATE USING %s WITH CHECK %s',
                t, tenant_expr, tenant_expr);
        END IF;
        IF has_table_privilege('charter_app', format('charter.%I', t), 'DELETE') THEN
            EXECUTE format('CREATE POLICY tenant_delete ON charter.%I FOR DELETE USING %s',
                t, tenant_expr);
        END IF;
    END LOOP;
END;
$$;

-- The audit function runs as the owner; these are the only writes RLS lets it make, still
-- bound to the transaction's tenant.
CREATE POLICY owner_appends ON charter.audit_entries FOR INSERT TO charter_owner
    WITH CHECK (tenant_id = current_setting('charter.tenant_id', true));
CREATE POLICY owner_creates_head ON charter.audit_heads FOR INSERT TO charter_owner
    WITH CHECK (tenant_id = current_setting('charter.tenant_id', true));
CREATE POLICY owner_advances_head ON charter.audit_heads FOR UPDATE TO charter_owner
    USING (tenant_id = current_setting('charter.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('charter.tenant_id', true));

ALTER TABLE charter.audit_entries
    ADD CONSTRAINT audit_entries_hash_hex CHECK (hash ~ '^[0-9a-f]{64}$'),
    ADD CONSTRAINT audit_entries_prev_hash_hex CHECK (prev_hash ~ '^[0-9a-f]{64}$');

-- The head may only move forward, one tenant row at a time; never deleted or truncated.
CREATE FUNCTION charter.guard_audit_head() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.tenant_id = OLD.tenant_id AND NEW.seq > OLD.seq THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'charter.audit_heads only moves forward: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_heads_forward_only
    BEFORE UPDATE OR DELETE ON charter.audit_heads
    FOR EACH ROW EXECUTE FUNCTION charter.guard_audit_head();
CREATE TRIGGER audit_heads_no_truncate
    BEFORE TRUNCATE ON charter.audit_heads
    FOR EACH STATEMENT EXECUTE FUNCTION charter.guard_audit_head();

-- One round trip per append, or per batch of appends (group commit). For each entry the
-- caller sends its canonical JSON encoding in three pieces around the two values only the
-- database knows under the lock (prev_hash, seq); the function assembles the bytes and
-- hashes them with PostgreSQL's own sha256, so the writer's hash is computed by code the
-- verifier (charter/audit.py) does not share. A caller that sends pieces disagreeing with
-- the columns produces an entry the verifier names as altered: detectable, never silent.
CREATE FUNCTION charter.audit_append(
    p_tenant_id text,
    p_kinds text[],
    p_occurred_at text[],
    p_workflow_ids text[],
    p_run_ids text[],
    p_actors text[],
    p_snapshots jsonb[],
    p_before_prev text[],
    p_before_seq text[],
    p_after_seq text[]
) RETURNS TABLE (entry_seq bigint, entry_hash text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_tenant text := current_setting('charter.tenant_id', true);
    v_count integer := coalesce(cardinality(p_kinds), 0);
    v_seq bigint;
    v_prev text;
    i integer;
BEGIN
    IF v_tenant IS NULL OR v_tenant = '' OR p_tenant_id IS DISTINCT FROM v_tenant THEN
        RAISE EXCEPTION 'audit append for tenant % outside that tenant''s transaction', p_tenant_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF v_count NOT BETWEEN 1 AND 1000
        OR cardinality(p_occurred_at) <> v_count OR cardinality(p_workflow_ids) <> v_count
        OR cardinality(p_run_ids) <> v_count OR cardinality(p_actors) <> v_count
        OR cardinality(p_snapshots) <> v_count OR cardinality(p_before_prev) <> v_count
        OR cardinality(p_before_seq) <> v_count OR cardinality(p_after_seq) <> v_count THEN
        RAISE EXCEPTION 'audit append needs 1 to 1000 entries with every field given'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The head row lock serialises appends of this tenant until commit; other tenants'
    -- rows are not touched, so they append in parallel.
    SELECT h.seq, h.hash INTO v_seq, v_prev
        FROM charter.audit_heads h WHERE h.tenant_id = p_tenant_id FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO charter.audit_heads (tenant_id, seq, hash)
            VALUES (p_tenant_id, 0, repeat('0', 64)) ON CONFLICT (tenant_id) DO NOTHING;
        SELECT h.seq, h.hash INTO STRICT v_seq, v_prev
            FROM charter.audit_heads h WHERE h.tenant_id = p_tenant_id FOR UPDATE;
    END IF;
    FOR i IN 1 .. v_count LOOP
        entry_seq := v_seq + i;
        entry_hash := encode(sha256(convert_to(
            p_before_prev[i] || v_prev || p_before_seq[i] || entry_seq::text || p_after_seq[i],
            'UTF8')), 'hex');
        INSERT INTO charter.audit_entries (tenant_id, seq, kind, occurred_at, workflow_id,
            run_id, actor, snapshot, prev_hash, hash)
        VALUES (p_tenant_id, entry_seq, p_kinds[i], p_occurred_at[i], p_workflow_ids[i],
            p_run_ids[i], p_actors[i], p_snapshots[i], v_prev, entry_hash);
        v_prev := entry_hash;
        RETURN NEXT;
    END LOOP;
    UPDATE charter.audit_heads SET seq = v_seq + v_count, hash = v_prev
        WHERE tenant_id = p_tenant_id;
END;
$$;
REVOKE ALL ON FUNCTION charter.audit_append(text, text[], text[], text[], text[], text[], jsonb[], text[], text[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION charter.audit_append(text, text[], text[], text[], text[], text[], jsonb[], text[], text[], text[]) TO charter_app;
