-- load_manifest(jsonb): replaces this database's expectations (see docs/manifest.md).
--
-- Django resolves its unqualified table names with the session's search_path, so the expectations
-- are recorded against the caller's name resolution. That is all this wrapper reads from the
-- caller; the work happens in _load_manifest, which runs with a pinned search_path. The body is
-- SQL-standard (BEGIN ATOMIC): every function and operator in it is bound when the extension is
-- created, so a schema placed first on the caller's search_path cannot capture any of them. Only
-- the text 'django_migrations' is resolved at call time, on purpose, exactly as Django resolves it.
CREATE FUNCTION django_migrator.load_manifest(manifest jsonb) RETURNS text
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
