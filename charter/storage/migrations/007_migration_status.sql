-- The application role may not read charter_meta, yet a worker must refuse to start on a
-- database that `charter migrate` has not brought up to date. This narrow definer function
-- tells it which migrations are applied, and nothing else.
CREATE FUNCTION charter.applied_migrations() RETURNS SETOF text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
    SELECT version FROM charter_meta.schema_migrations ORDER BY version
$$;
REVOKE ALL ON FUNCTION charter.applied_migrations() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION charter.applied_migrations() TO charter_app;
