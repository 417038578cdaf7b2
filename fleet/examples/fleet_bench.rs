//! The engine side of the fleet, measured through banset-fleet's API
//! against a PostgreSQL given by DSN (bench/fleet starts a private one and
//! runs this). Prints one `RESULT name value unit` line per number.
//!
//!     fleet_bench SUPERUSER_DSN ROWS
//!
//! Phases: single-row publishes (latency, as a jail's ban goes out), bulk
//! publish of ROWS rows by one host (rate), a second host pulling them all
//! by cursor (page rate), a snapshot of every active row (time), and the
//! same rows read by COPY-free plain SELECT on one connection as the floor.

use std::time::{Duration, Instant};

use banset_fleet::{Admin, ConnectOptions, Cursor, FleetClient, FleetError, Publish, Pull, Status};

fn target(i: usize) -> String {
    // 10.0.0.0/8 and on: distinct IPv4 addresses.
    let i = i + (10 << 24);
    format!(
        "{}.{}.{}.{}",
        (i >> 24) & 255,
        (i >> 16) & 255,
        (i >> 8) & 255,
        i & 255
    )
}

fn ban(i: usize) -> Publish {
    Publish {
        set: "ssh".into(),
        target: target(i),
        status: Status::Banned {
            remaining: Some(Duration::from_secs(7 * 86_400)),
        },
        jail: Some("sshd".into()),
        reason: Some("bench".into()),
    }
}

fn pct(xs: &mut [f64], p: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    let i = ((p / 100.0) * (xs.len() - 1) as f64).round() as usize;
    xs[i.min(xs.len() - 1)]
}

fn main() -> Result<(), FleetError> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dsn), Some(rows)) = (
        args.get(1),
        args.get(2).and_then(|n| n.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: fleet_bench SUPERUSER_DSN ROWS");
        std::process::exit(2);
    };
    let mut admin = Admin::connect(&ConnectOptions::plain(dsn.clone()))?;
    admin.init()?;
    let quota = i64::try_from(rows * 2 + 10_000).unwrap_or(i64::MAX);
    let a = admin.add_host("bench-a", Some(quota))?;
    let b = admin.add_host("bench-b", Some(quota))?;
    let with = |c: &banset_fleet::Credentials| {
        // The superuser DSN's socket and database, the host's role.
        let base: String = dsn
            .split_whitespace()
            .filter(|kv| !kv.starts_with("user=") && !kv.starts_with("password="))
            .collect::<Vec<_>>()
            .join(" ");
        ConnectOptions::plain(format!("{base} user={} password={}", c.role, c.password))
    };
    let mut host_a = FleetClient::connect(&with(&a))?;
    let mut host_b = FleetClient::connect(&with(&b))?;

    // One ban at a time, each its own transaction (a jail's ban).
    let mut single = Vec::new();
    for i in 0..500 {
        let t = Instant::now();
        host_a.publish(&[ban(rows + i)])?;
        single.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!("RESULT publish_one_p50 {:.2} ms", pct(&mut single, 50.0));
    println!("RESULT publish_one_p99 {:.2} ms", pct(&mut single, 99.0));

    // Bulk: batches of 5,000 (an outbox drained after an outage).
    let t = Instant::now();
    let batch = 5_000;
    let mut i = 0;
    while i < rows {
        let end = (i + batch).min(rows);
        let changes: Vec<Publish> = (i..end).map(ban).collect();
        host_a.publish(&changes)?;
        i = end;
    }
    let secs = t.elapsed().as_secs_f64();
    println!("RESULT publish_bulk_rate {:.0} rows/s", rows as f64 / secs);
    println!("RESULT publish_bulk_time {secs:.2} s");

    // Pull everything by cursor, pages of 10,000.
    let t = Instant::now();
    let mut cursor = Cursor::START;
    let (mut pages, mut pulled) = (0usize, 0usize);
    loop {
        match host_b.pull(cursor, 10_000)? {
            Pull::Page(page) => {
                pages += 1;
                pulled += page.rows.len();
                cursor = page.cursor;
                if !page.full {
                    break;
                }
            }
            Pull::Expired { .. } => unreachable!("nothing was purged"),
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!("RESULT pull_rows {pulled} rows");
    println!("RESULT pull_page_rate {:.1} pages/s", pages as f64 / secs);
    println!("RESULT pull_row_rate {:.0} rows/s", pulled as f64 / secs);
    println!("RESULT pull_time {secs:.2} s");

    // A delta: 1,000 changes after the cursor, as a host back after a while.
    let changes: Vec<Publish> = (0..1_000)
        .map(|i| Publish {
            status: Status::Unbanned,
            ..ban(i)
        })
        .collect();
    host_a.publish(&changes)?;
    let t = Instant::now();
    let Pull::Page(page) = host_b.pull(cursor, 10_000)? else {
        unreachable!("nothing was purged")
    };
    println!(
        "RESULT pull_delta_1000 {:.1} ms ({} rows)",
        t.elapsed().as_secs_f64() * 1000.0,
        page.rows.len()
    );

    // Snapshot of every active row, pages of 10,000.
    let t = Instant::now();
    let mut active = 0usize;
    host_b.snapshot(10_000, |rows| {
        active += rows.len();
        Ok::<_, FleetError>(())
    })?;
    let secs = t.elapsed().as_secs_f64();
    println!("RESULT snapshot_rows {active} rows");
    println!("RESULT snapshot_time {secs:.2} s");
    println!("RESULT snapshot_rate {:.0} rows/s", active as f64 / secs);
    Ok(())
}
