-- Privileges, after every object exists. Reading is open to any role that can read
-- django_migrations; changing expectations or history is not.
REVOKE ALL ON FUNCTION django_migrator.load_manifest(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION django_migrator._load_manifest(text, text[], text) FROM PUBLIC;
REVOKE ALL ON FUNCTION django_migrator.repair(boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION django_migrator.record_companions(boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION django_migrator.undo_repair(bigint) FROM PUBLIC;
GRANT SELECT ON django_migrator.repairs TO PUBLIC;
GRANT USAGE ON SCHEMA django_migrator TO PUBLIC;
GRANT SELECT ON django_migrator.manifest TO PUBLIC;
-- Who holds the migration lock is no secret (pg_stat_activity shows as much); lock_holder()
-- reads the labels with the caller's privileges.
GRANT SELECT ON django_migrator.lock_labels TO PUBLIC;

-- The role that ran CREATE EXTENSION may run every writer. When a superuser installs, that is
-- already so; when a database owner installs (the extension is trusted), the objects belong to
-- the bootstrap superuser and these grants are what lets the owner deploy.
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

-- Drift counts for monitoring: every kind, with zero when absent.
CREATE VIEW django_migrator.drift_summary AS
    SELECT k.kind, pg_catalog.count(s.kind)::bigint AS count
      FROM (VALUES ('unrecorded_present'), ('half_applied'), ('recorded_missing'),
                   ('inconsistent_history'), ('orphan_record')) AS k(kind)
      LEFT JOIN django_migrator.scan() s ON s.kind = k.kind
     GROUP BY k.kind;
GRANT SELECT ON django_migrator.drift_summary TO PUBLIC;
