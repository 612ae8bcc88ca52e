-- Privileges, after every object exists. Reading is open to any role that can read
-- django_migrations; changing expectations or history is not.
REVOKE ALL ON FUNCTION django_migrator.load_manifest(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION django_migrator.repair(boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION django_migrator.record_companions(boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION django_migrator.undo_repair(bigint) FROM PUBLIC;
GRANT SELECT ON django_migrator.repairs TO PUBLIC;
GRANT USAGE ON SCHEMA django_migrator TO PUBLIC;
GRANT SELECT ON django_migrator.manifest TO PUBLIC;

-- Drift counts for monitoring: every kind, with zero when absent.
CREATE VIEW django_migrator.drift_summary AS
    SELECT k.kind, pg_catalog.count(s.kind)::bigint AS count
      FROM (VALUES ('unrecorded_present'), ('half_applied'), ('recorded_missing'),
                   ('inconsistent_history'), ('orphan_record')) AS k(kind)
      LEFT JOIN django_migrator.scan() s ON s.kind = k.kind
     GROUP BY k.kind;
GRANT SELECT ON django_migrator.drift_summary TO PUBLIC;
