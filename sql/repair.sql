-- The repair journal: every change repair() made to django_migrations, exactly, so that
-- undo_repair() can put the rows back as they were.

CREATE SEQUENCE django_migrator.repair_journal_id_seq;
CREATE TABLE django_migrator.repair_journal (
    id bigint PRIMARY KEY DEFAULT pg_catalog.nextval('django_migrator.repair_journal_id_seq'),
    repaired_at timestamptz NOT NULL,
    role name NOT NULL,
    application_name text,
    client_addr inet,
    alias text NOT NULL,
    manifest_digest text NOT NULL,
    migrations_schema text NOT NULL,
    -- The plan as decided: [{"action", "app", "name", "reason"}].
    plan jsonb NOT NULL,
    -- The rows written, each {"id", "app", "name", "applied"}.
    inserted jsonb NOT NULL,
    deleted jsonb NOT NULL,
    undone_at timestamptz,
    undone_by name
);
ALTER SEQUENCE django_migrator.repair_journal_id_seq OWNED BY django_migrator.repair_journal.id;
SELECT pg_catalog.pg_extension_config_dump('django_migrator.repair_journal', '');
SELECT pg_catalog.pg_extension_config_dump('django_migrator.repair_journal_id_seq', '');

CREATE VIEW django_migrator.repairs AS
    SELECT j.id, j.repaired_at, j.role, j.application_name, j.client_addr, j.alias,
           j.manifest_digest, j.plan, j.inserted, j.deleted, j.undone_at, j.undone_by
      FROM django_migrator.repair_journal j;

-- Journal writes go through these two functions. SECURITY DEFINER: application roles get no
-- privilege on the journal table itself, so they cannot forge or erase entries; the functions
-- take only the entry's content and record the caller's identity themselves.
CREATE FUNCTION django_migrator._journal_append(
    alias text, manifest_digest text, migrations_schema text,
    plan jsonb, inserted jsonb, deleted jsonb)
RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
SECURITY DEFINER
AS $$
    INSERT INTO django_migrator.repair_journal
           (repaired_at, role, application_name, client_addr, alias, manifest_digest,
            migrations_schema, plan, inserted, deleted)
    VALUES (pg_catalog.now(), SESSION_USER,
            pg_catalog.current_setting('application_name'), pg_catalog.inet_client_addr(),
            alias, manifest_digest, migrations_schema, plan, inserted, deleted)
    RETURNING id
$$;

CREATE FUNCTION django_migrator._journal_mark_undone(repair_id bigint)
RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
SECURITY DEFINER
AS $$
    UPDATE django_migrator.repair_journal
       SET undone_at = pg_catalog.now(), undone_by = SESSION_USER
     WHERE id = repair_id AND undone_at IS NULL
$$;

REVOKE ALL ON FUNCTION django_migrator._journal_append(text, text, text, jsonb, jsonb, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION django_migrator._journal_mark_undone(bigint) FROM PUBLIC;
