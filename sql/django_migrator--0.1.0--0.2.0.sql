-- django_migrator 0.1.0 -> 0.2.0 (ALTER EXTENSION django_migrator UPDATE).
--
-- * load_manifest(jsonb) no longer runs its own SQL under the caller's search_path: it becomes
--   a SQL-standard wrapper that reads only the caller's name resolution and hands it to
--   _load_manifest, which is pinned to pg_catalog. CREATE OR REPLACE keeps the function's OID and
--   the privileges granted on it.
-- * lock_holder() works for every role: the lock labels become readable by PUBLIC.
-- * The role that installed the extension may run every writer (needed when a database owner
--   installs the now trusted extension; a no-op for a superuser).
-- Tables, the journal and the stored manifest are untouched.

CREATE FUNCTION django_migrator."_load_manifest"(
	"manifest" TEXT,
	"search_path" TEXT[],
	"migrations_schema" TEXT
) RETURNS TEXT
VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'load_manifest_resolved_wrapper';

CREATE OR REPLACE FUNCTION django_migrator.load_manifest(manifest jsonb) RETURNS text
    LANGUAGE sql VOLATILE STRICT PARALLEL UNSAFE
BEGIN ATOMIC
    SELECT django_migrator._load_manifest(
        manifest::pg_catalog.text,
        pg_catalog.current_schemas(false)::pg_catalog.text[],
        COALESCE(
            (SELECT n.nspname::pg_catalog.text
               FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE c.oid = pg_catalog.to_regclass('django_migrations')),
            pg_catalog.current_schema()::pg_catalog.text));
END;

REVOKE ALL ON FUNCTION django_migrator._load_manifest(text, text[], text) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION django_migrator.load_manifest(jsonb),
                          django_migrator._load_manifest(text, text[], text),
                          django_migrator.repair(boolean),
                          django_migrator.record_companions(boolean),
                          django_migrator.undo_repair(bigint),
                          django_migrator._journal_append(text, text, text, jsonb, jsonb, jsonb),
                          django_migrator._journal_mark_undone(bigint),
                          django_migrator._label_lock(text)
      TO @extowner@;
GRANT INSERT, UPDATE ON django_migrator.manifest TO @extowner@;
GRANT SELECT ON django_migrator.lock_labels TO PUBLIC;
