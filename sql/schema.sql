-- Tables and SQL-language functions of django_migrator. Loaded first (bootstrap): the Rust
-- functions and the finalize script refer to these objects.

-- The expectations of this database: one row, replaced atomically by load_manifest().
CREATE TABLE django_migrator.manifest (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    alias text NOT NULL,
    digest text NOT NULL,
    loaded_at timestamptz NOT NULL,
    loaded_by name NOT NULL,
    migrations integer NOT NULL,
    effects integer NOT NULL,
    -- current_schemas(false) of the loading session: what Django's unqualified names resolve to.
    search_path text[] NOT NULL,
    -- The schema holding (or about to hold) django_migrations for that session.
    migrations_schema text NOT NULL,
    body jsonb NOT NULL
);
COMMENT ON TABLE django_migrator.manifest IS
    'Expectations of this database (see docs/manifest.md); written only by load_manifest()';
-- Keep the manifest across pg_dump/pg_restore like any user data.
SELECT pg_catalog.pg_extension_config_dump('django_migrator.manifest', '');

-- Who holds the migration lock. The lock itself is a session-level advisory lock; this table only
-- labels it. Rows of sessions that are gone are ignored (joined on pid AND backend_start) and
-- cleaned up by the next try_lock().
CREATE TABLE django_migrator.lock_labels (
    pid integer PRIMARY KEY,
    backend_start timestamptz NOT NULL,
    holder text,
    acquired_at timestamptz NOT NULL
);

CREATE FUNCTION django_migrator.identity(
    OUT system_identifier bigint,
    OUT database_oid oid,
    OUT database_name text,
    OUT server_version text,
    OUT in_recovery boolean
)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
-- SECURITY DEFINER: pg_control_system() is not executable by ordinary roles, and the guards
-- must run as the application's role. It returns only the cluster's system identifier, which
-- is not a secret, and takes no input.
SECURITY DEFINER
AS $$
    SELECT (SELECT s.system_identifier FROM pg_catalog.pg_control_system() s),
           d.oid,
           d.datname::text,
           pg_catalog.current_setting('server_version'),
           pg_catalog.pg_is_in_recovery()
      FROM pg_catalog.pg_database d
     WHERE d.datname = pg_catalog.current_database()
$$;

CREATE FUNCTION django_migrator.manifest_info(
    OUT alias text,
    OUT digest text,
    OUT loaded_at timestamptz,
    OUT migrations integer,
    OUT effects integer
)
RETURNS SETOF record
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT m.alias, m.digest, m.loaded_at, m.migrations, m.effects FROM django_migrator.manifest m
$$;
