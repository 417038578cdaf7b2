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
CREATE FUNCTION banset_fleet.stamp_row() RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (NEW.origin, NEW.set_name, NEW.target)
            IS DISTINCT FROM (OLD.origin, OLD.set_name, OLD.target) THEN
        RAISE EXCEPTION 'banset_fleet: the key of a row never changes' USING ERRCODE = 'BF003';
    END IF;
    IF NEW.banned AND EXISTS (SELECT FROM banset_fleet.hosts h
                              WHERE h.origin = NEW.origin AND h.revoked) THEN
        RAISE EXCEPTION 'banset_fleet: host % is revoked', NEW.origin USING ERRCODE = 'BF002';
    END IF;
    NEW.changed_at := now();
    NEW.changed_by := current_user;
    NEW.txid := pg_current_xact_id()::text::bigint;
    NEW.seq := nextval('banset_fleet.stamp_seq');
    RETURN NEW;
END $$;
CREATE TRIGGER bans_stamp BEFORE INSERT OR UPDATE ON banset_fleet.bans
    FOR EACH ROW EXECUTE FUNCTION banset_fleet.stamp_row();

-- AFTER INSERT, so that an upsert that ends as an UPDATE is not counted.
CREATE FUNCTION banset_fleet.count_row() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        UPDATE banset_fleet.hosts SET row_count = row_count - 1 WHERE origin = OLD.origin;
        RETURN OLD;
    END IF;
    UPDATE banset_fleet.hosts SET row_count = row_count + 1
        WHERE origin = NEW.origin AND row_count < quota;
    IF NOT FOUND THEN
        IF EXISTS (SELECT FROM banset_fleet.hosts WHERE origin = NEW.origin) THEN
            RAISE EXCEPTION 'banset_fleet: host % is at its quota of rows', NEW.origin
                USING ERRCODE = 'BF001';
        END IF;
        RAISE EXCEPTION 'banset_fleet: % is not a fleet host', NEW.origin USING ERRCODE = 'BF004';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER bans_count AFTER INSERT OR DELETE ON banset_fleet.bans
    FOR EACH ROW EXECUTE FUNCTION banset_fleet.count_row();

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
REVOKE ALL ON FUNCTION banset_fleet.stamp_row(), banset_fleet.count_row() FROM PUBLIC;
