-- banset fleet schema, version 1. Applied by `Admin::init` inside one
-- transaction, only when `banset_fleet.meta` says an older version (or none).
-- Every writer of `bans` is a host role (member of banset_fleet_host) that
-- may touch only its own rows (RLS origin = current_user), or the admin
-- group, which may only turn rows into tombstones.

DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'banset_fleet_host') THEN
        CREATE ROLE banset_fleet_host NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'banset_fleet_admin') THEN
        CREATE ROLE banset_fleet_admin NOLOGIN;
    END IF;
END $$;

CREATE SCHEMA banset_fleet;
REVOKE ALL ON SCHEMA banset_fleet FROM PUBLIC;

-- One row: the schema version, the tombstone retention, and the horizon:
-- the highest change stamp purge() ever deleted. A reader whose cursor is
-- below it may have missed a deleted change and must take a snapshot.
CREATE TABLE banset_fleet.meta (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version integer NOT NULL,
    retention interval NOT NULL DEFAULT '7 days' CHECK (retention >= interval '1 second'),
    default_quota bigint NOT NULL DEFAULT 100000 CHECK (default_quota >= 0),
    horizon_txid bigint NOT NULL DEFAULT 0,
    horizon_seq bigint NOT NULL DEFAULT 0
);
INSERT INTO banset_fleet.meta (version) VALUES (1);

-- One row per host role: its row quota (the flood bound: every other host
-- stores and applies at most this many of its rows) and its row count,
-- kept by triggers so that the check costs one row lock, not a count(*).
CREATE TABLE banset_fleet.hosts (
    origin text PRIMARY KEY,
    quota bigint NOT NULL CHECK (quota >= 0),
    row_count bigint NOT NULL DEFAULT 0,
    revoked boolean NOT NULL DEFAULT false
);

CREATE SEQUENCE banset_fleet.stamp_seq;

CREATE TABLE banset_fleet.bans (
    origin text NOT NULL DEFAULT current_user,
    set_name text NOT NULL CHECK (set_name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,29}$'),
    target text NOT NULL CHECK (target ~ '^[0-9A-Fa-f:.]{2,45}(/[0-9]{1,3})?$'),
    banned boolean NOT NULL,
    -- NULL: permanent. Always computed as the engine's now() + remaining,
    -- so a host's wrong clock never shortens or stretches a ban.
    deadline timestamptz,
    jail text CHECK (length(jail) <= 64),
    reason text CHECK (length(reason) <= 256),
    -- Set by the trigger, whatever the writer sends.
    changed_at timestamptz NOT NULL DEFAULT now(),
    changed_by text NOT NULL DEFAULT current_user,
    txid bigint NOT NULL DEFAULT 0,
    seq bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (origin, set_name, target)
);
CREATE INDEX bans_stamp ON banset_fleet.bans (txid, seq);

-- The change stamp (txid, seq): the writing transaction's id and a
-- sequence number. Readers take only stamps below the oldest open
-- transaction (pg_snapshot_xmin), so a transaction that commits late can
-- never land behind a cursor that already moved past it.
-- SECURITY INVOKER: current_user must be the writer (inside a definer
-- function it would be the schema's owner), so the writer's group needs
-- USAGE on the sequence (nextval only: it cannot set or rewind it).
-- No SET search_path: that clause costs a configuration push and pop per
-- row (measured: it doubled a 5,000-row insert). Every name is qualified
-- instead; functions never resolve in pg_temp, and a writer that shadows
-- a type there breaks only its own statement. Checks that need a query
-- (revoked host, quota) run once per statement, after it (below).
CREATE FUNCTION banset_fleet.stamp_row() RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (NEW.origin, NEW.set_name, NEW.target)
            IS DISTINCT FROM (OLD.origin, OLD.set_name, OLD.target) THEN
        RAISE EXCEPTION 'banset_fleet: the key of a row never changes' USING ERRCODE = 'BF003';
    END IF;
    NEW.changed_at := pg_catalog.now();
    NEW.changed_by := pg_catalog."current_user"();
    NEW.txid := pg_catalog.pg_current_xact_id()::pg_catalog.text::pg_catalog.int8;
    NEW.seq := pg_catalog.nextval('banset_fleet.stamp_seq'::pg_catalog.regclass);
    RETURN NEW;
END $$;
CREATE TRIGGER bans_stamp BEFORE INSERT OR UPDATE ON banset_fleet.bans
    FOR EACH ROW EXECUTE FUNCTION banset_fleet.stamp_row();

-- Row counts per host, kept per statement from the transition tables:
-- a per-row UPDATE of the host's counter would leave one dead version of
-- that row per ban inside the transaction, and every later row would walk
-- them all (measured: 5,000-row batches at 1,800 rows/s). The quota check
-- runs after the statement, so a batch over the quota commits nothing.
-- An upsert that ends as an UPDATE is in no INSERT transition table.
CREATE FUNCTION banset_fleet.count_inserted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    stranger text;
    full_host text;
BEGIN
    SELECT i.origin INTO stranger FROM inserted i
        WHERE NOT EXISTS (SELECT FROM banset_fleet.hosts h WHERE h.origin = i.origin) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'banset_fleet: % is not a fleet host', stranger USING ERRCODE = 'BF004';
    END IF;
    IF EXISTS (SELECT FROM inserted i JOIN banset_fleet.hosts h USING (origin)
               WHERE i.banned AND h.revoked) THEN
        RAISE EXCEPTION 'banset_fleet: a revoked host cannot ban' USING ERRCODE = 'BF002';
    END IF;
    WITH added AS (SELECT origin, count(*) AS n FROM inserted GROUP BY origin)
    UPDATE banset_fleet.hosts h SET row_count = h.row_count + a.n
        FROM added a WHERE h.origin = a.origin;
    SELECT h.origin INTO full_host FROM banset_fleet.hosts h
        WHERE h.row_count > h.quota AND h.origin IN (SELECT origin FROM inserted) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'banset_fleet: host % is at its quota of rows', full_host
            USING ERRCODE = 'BF001';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER bans_count_insert AFTER INSERT ON banset_fleet.bans
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION banset_fleet.count_inserted();

-- Nobody bans in a revoked host's name, not even the owner by mistake.
CREATE FUNCTION banset_fleet.check_updated() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT FROM changed c JOIN banset_fleet.hosts h USING (origin)
               WHERE c.banned AND h.revoked) THEN
        RAISE EXCEPTION 'banset_fleet: a revoked host cannot ban' USING ERRCODE = 'BF002';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER bans_check_update AFTER UPDATE ON banset_fleet.bans
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION banset_fleet.check_updated();

CREATE FUNCTION banset_fleet.count_deleted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    WITH gone AS (SELECT origin, count(*) AS n FROM deleted GROUP BY origin)
    UPDATE banset_fleet.hosts h SET row_count = h.row_count - g.n
        FROM gone g WHERE h.origin = g.origin;
    RETURN NULL;
END $$;
CREATE TRIGGER bans_count_delete AFTER DELETE ON banset_fleet.bans
    REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION banset_fleet.count_deleted();

-- One wake-up per statement; NOTIFY is delivered at commit and carries no
-- data: readers pull by cursor, so a lost notification costs only latency.
CREATE FUNCTION banset_fleet.notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('banset_fleet', '');
    RETURN NULL;
END $$;
CREATE TRIGGER bans_notify AFTER INSERT OR UPDATE ON banset_fleet.bans
    FOR EACH STATEMENT EXECUTE FUNCTION banset_fleet.notify_change();

-- Deletes tombstones and ended bans older than the retention and moves the
-- horizon past them. Any host may call it: it removes only what no reader
-- needs any more, and readers behind the horizon learn it from pull().
CREATE FUNCTION banset_fleet.purge() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    gone bigint;
    top_txid bigint;
    top_seq bigint;
BEGIN
    WITH deleted AS (
        DELETE FROM banset_fleet.bans b USING banset_fleet.meta m
        WHERE (NOT b.banned OR b.deadline < now())
          AND greatest(b.changed_at, coalesce(b.deadline, b.changed_at)) < now() - m.retention
        RETURNING b.txid, b.seq
    ), top AS (
        SELECT txid, seq FROM deleted ORDER BY txid DESC, seq DESC LIMIT 1
    )
    SELECT (SELECT count(*) FROM deleted), top.txid, top.seq
        INTO gone, top_txid, top_seq
        FROM (SELECT 1) one LEFT JOIN top ON true;
    IF top_txid IS NOT NULL THEN
        UPDATE banset_fleet.meta SET horizon_txid = top_txid, horizon_seq = top_seq
            WHERE (horizon_txid, horizon_seq) < (top_txid, top_seq);
    END IF;
    RETURN gone;
END $$;

ALTER TABLE banset_fleet.bans ENABLE ROW LEVEL SECURITY;
CREATE POLICY fleet_read ON banset_fleet.bans FOR SELECT
    TO banset_fleet_host, banset_fleet_admin USING (true);
CREATE POLICY host_insert ON banset_fleet.bans FOR INSERT
    TO banset_fleet_host WITH CHECK (origin = current_user);
CREATE POLICY host_update ON banset_fleet.bans FOR UPDATE
    TO banset_fleet_host USING (origin = current_user) WITH CHECK (origin = current_user);
-- The admin withdraws a ban everywhere by turning rows into tombstones; it
-- can never ban in another host's name.
CREATE POLICY admin_unban ON banset_fleet.bans FOR UPDATE
    TO banset_fleet_admin USING (true) WITH CHECK (NOT banned);

GRANT USAGE ON SCHEMA banset_fleet TO banset_fleet_host, banset_fleet_admin;
GRANT SELECT, INSERT, UPDATE ON banset_fleet.bans TO banset_fleet_host;
GRANT SELECT, UPDATE ON banset_fleet.bans TO banset_fleet_admin;
GRANT SELECT ON banset_fleet.meta, banset_fleet.hosts TO banset_fleet_host, banset_fleet_admin;
GRANT USAGE ON SEQUENCE banset_fleet.stamp_seq TO banset_fleet_host, banset_fleet_admin;
REVOKE ALL ON FUNCTION banset_fleet.purge() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION banset_fleet.purge() TO banset_fleet_host, banset_fleet_admin;
REVOKE ALL ON FUNCTION banset_fleet.stamp_row(), banset_fleet.count_inserted(),
    banset_fleet.check_updated(), banset_fleet.count_deleted() FROM PUBLIC;
