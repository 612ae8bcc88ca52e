-- The migration lock: a session-level advisory lock on django_migrator.lock_key(), so it is
-- released by PostgreSQL itself when the holding session ends, however it ends.

CREATE FUNCTION django_migrator.holds_lock()
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (
        SELECT 1 FROM pg_catalog.pg_locks l
         WHERE l.locktype = 'advisory' AND l.granted AND l.pid = pg_catalog.pg_backend_pid()
           AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                              WHERE d.datname = pg_catalog.current_database())
           AND l.classid = ((django_migrator.lock_key() >> 32) & 4294967295)::oid
           AND l.objid = (django_migrator.lock_key() & 4294967295)::oid
           AND l.objsubid = 1)
$$;

-- Labels the lock this session holds. SECURITY DEFINER: the label table is not writable by
-- application roles; this function writes only the caller's own pid, and only while it holds
-- the lock.
CREATE FUNCTION django_migrator._label_lock(holder text)
RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
SECURITY DEFINER
AS $$
    DELETE FROM django_migrator.lock_labels l
     WHERE l.pid = pg_catalog.pg_backend_pid()
        OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a
                        WHERE a.pid = l.pid AND a.backend_start = l.backend_start);
    INSERT INTO django_migrator.lock_labels (pid, backend_start, holder, acquired_at)
    SELECT a.pid, a.backend_start, holder, pg_catalog.clock_timestamp()
      FROM pg_catalog.pg_stat_activity a
     WHERE a.pid = pg_catalog.pg_backend_pid() AND django_migrator.holds_lock();
$$;
REVOKE ALL ON FUNCTION django_migrator._label_lock(text) FROM PUBLIC;

CREATE FUNCTION django_migrator.try_lock(holder text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Advisory locks stack per session; keep the count at one so that one unlock() frees it.
    IF NOT django_migrator.holds_lock() THEN
        IF NOT pg_catalog.pg_try_advisory_lock(django_migrator.lock_key()) THEN
            RETURN false;
        END IF;
    END IF;
    PERFORM django_migrator._label_lock(holder);
    RETURN true;
END
$$;

CREATE FUNCTION django_migrator.lock(timeout interval, holder text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    waited_ms bigint := pg_catalog.ceil(EXTRACT(epoch FROM timeout) * 1000)::bigint;
    previous text := pg_catalog.current_setting('lock_timeout');
BEGIN
    IF timeout IS NULL THEN
        RAISE EXCEPTION 'django_migrator.lock: timeout must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass an interval such as ''30 seconds''; use try_lock() not to wait.';
    END IF;
    IF waited_ms <= 0 OR django_migrator.holds_lock() THEN
        RETURN django_migrator.try_lock(holder);
    END IF;
    -- Wait in the lock manager (so waiters show in pg_locks and lock_holder().waiting), bounded
    -- by lock_timeout for this one call.
    PERFORM pg_catalog.set_config('lock_timeout', waited_ms::text, true);
    PERFORM pg_catalog.pg_advisory_lock(django_migrator.lock_key());
    PERFORM pg_catalog.set_config('lock_timeout', previous, true);
    PERFORM django_migrator._label_lock(holder);
    RETURN true;
EXCEPTION WHEN lock_not_available THEN
    -- The block's subtransaction is rolled back, which restores lock_timeout as well.
    RETURN false;
END
$$;

CREATE FUNCTION django_migrator.unlock()
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT django_migrator.holds_lock() THEN
        RETURN false;
    END IF;
    PERFORM pg_catalog.pg_advisory_unlock(django_migrator.lock_key());
    RETURN true;
END
$$;

CREATE FUNCTION django_migrator.lock_holder()
RETURNS TABLE (pid integer, holder text, application_name text, client_addr inet,
               backend_start timestamptz, state text, waiting integer)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH ours AS (
        SELECT l.pid, l.granted FROM pg_catalog.pg_locks l
         WHERE l.locktype = 'advisory'
           AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                              WHERE d.datname = pg_catalog.current_database())
           AND l.classid = ((django_migrator.lock_key() >> 32) & 4294967295)::oid
           AND l.objid = (django_migrator.lock_key() & 4294967295)::oid
           AND l.objsubid = 1
    )
    SELECT o.pid, lb.holder, a.application_name::text, a.client_addr, a.backend_start,
           a.state::text,
           (SELECT pg_catalog.count(*) FROM ours w WHERE NOT w.granted)::integer
      FROM ours o
      LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = o.pid
      LEFT JOIN django_migrator.lock_labels lb
             ON lb.pid = o.pid AND lb.backend_start = a.backend_start
     WHERE o.granted
$$;
