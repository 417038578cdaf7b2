//! The fleet's ledger tables, apart so the ledger's migration can read
//! them without importing the rest of the fleet.

/// Version 5 of the ledger's schema: the fleet's tables. Idempotent, run
/// by the ledger's migration with the rest.
pub const SCHEMA: &str = "
    -- What this host publishes: one row per (set, target), coalesced. A
    -- row is pending while `version` > `sent` (the version the engine
    -- acknowledged); sent rows stay, as the list of this host's own bans
    -- that the publisher re-asserts now and then.
    CREATE TABLE IF NOT EXISTS fleet_outbox (
        set_name TEXT NOT NULL,
        target   TEXT NOT NULL,
        banned   INTEGER NOT NULL,
        deadline INTEGER,
        jail     TEXT,
        reason   TEXT,
        changed  INTEGER NOT NULL,
        version  INTEGER NOT NULL,
        sent     INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (set_name, target)
    ) WITHOUT ROWID;
    -- The publisher reads only pending rows; sent ones (every active ban
    -- of this host) would otherwise be scanned on each round.
    CREATE INDEX IF NOT EXISTS fleet_outbox_pending ON fleet_outbox (changed)
        WHERE version > sent;
    -- Remote bans this host accepted, one row per origin; deadlines in
    -- this host's clock. An unban (tombstone) deletes its origin's row.
    -- `gen`: the snapshot that last held the row (0: a delta wrote it);
    -- a snapshot's sweep drops the rows it did not hold.
    CREATE TABLE IF NOT EXISTS fleet_rows (
        set_name TEXT NOT NULL,
        target   TEXT NOT NULL,
        origin   TEXT NOT NULL,
        deadline INTEGER,
        gen      INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (set_name, target, origin)
    ) WITHOUT ROWID;
    -- Ledger bans the fleet made (not a local ban, which the fleet never
    -- removes or shortens). A local ban of the target takes it over.
    CREATE TABLE IF NOT EXISTS fleet_made (
        set_name TEXT NOT NULL,
        target   TEXT NOT NULL,
        PRIMARY KEY (set_name, target)
    ) WITHOUT ROWID;
    -- A local unban of a fleet ban: remote bans of the target are
    -- suppressed until `until` (NULL: for good).
    CREATE TABLE IF NOT EXISTS fleet_holds (
        set_name TEXT NOT NULL,
        target   TEXT NOT NULL,
        until    INTEGER,
        PRIMARY KEY (set_name, target)
    ) WITHOUT ROWID;";
