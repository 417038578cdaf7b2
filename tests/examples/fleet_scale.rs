//! The fleet at scale, measured (bench/fleet-scale runs this; see
//! bench/README.md). Prints one `RESULT name value unit` line per number.
//!
//!     fleet_scale apply [ROWS]        # kernel apply rate of remote bans
//!
//! `apply`: `Engine::apply_fleet` on the real nftables kernel in a network
//! namespace of its own, pages of 10,000 remote rows (the puller's page),
//! ROWS in all (default 100,000); beside it the kernel's own floor, the
//! same elements added by one `nft -f` file, in the same run.

use std::io::Write as _;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::Instant;

use banset_core::fleet::FleetPolicy;
use banset_core::{
    Allowlist, BackendKind, Engine, FleetPage, FleetRow, Ledger, SetName, SetSpec, SystemClock,
    Target, Timeout,
};
use banset_nftables::NftablesBackend;
use banset_tests::netns;

/// The puller's page size.
const PAGE: usize = 10_000;

fn usage() -> ! {
    eprintln!("usage: fleet_scale apply [ROWS]");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: usize| {
        args.get(i)
            .map(|s| s.parse().unwrap_or_else(|_| usage()))
            .unwrap_or(default)
    };
    match args.first().map(String::as_str) {
        Some("apply") => apply(number(1, 100_000)),
        _ => usage(),
    }
}

/// Distinct IPv4 addresses from 11.0.0.0 on.
fn address(i: usize) -> Ipv4Addr {
    Ipv4Addr::from((11u32 << 24) + i as u32)
}

fn apply(rows: usize) {
    if netns::skip_unless_root("fleet_scale apply") {
        std::process::exit(1);
    }
    netns::in_new_netns(|| {
        let dir = std::env::temp_dir().join(format!("banset-fleet-scale-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let backend = NftablesBackend::open().unwrap();
        let set = SetName::new("fleet").unwrap();
        let mut spec = SetSpec::new(set.clone(), BackendKind::Nftables);
        spec.timeout = Timeout::Secs(7 * 86_400);
        spec.max_elements = Some(u32::try_from(rows * 2).unwrap_or(u32::MAX).max(1 << 20));
        let mut ledger = Ledger::open(&dir.join("ledger.db")).unwrap();
        let allowlist = Allowlist::new();
        let mut engine = Engine {
            ledger: &mut ledger,
            backends: &backend,
            clock: &SystemClock,
            allowlist: &allowlist,
            dry_run: false,
        };
        engine.create(&spec).unwrap();
        let policy = FleetPolicy::new("bench");
        let pages: Vec<FleetPage> = (0..rows)
            .collect::<Vec<_>>()
            .chunks(PAGE)
            .enumerate()
            .map(|(n, chunk)| FleetPage {
                rows: chunk
                    .iter()
                    .map(|&i| FleetRow {
                        origin: "other".into(),
                        set: set.clone(),
                        target: Target::parse(&address(i).to_string()).unwrap(),
                        banned: true,
                        remaining: Some(86_400),
                    })
                    .collect(),
                cursor: Some(format!("c{n}")),
                ..FleetPage::default()
            })
            .collect();
        let started = Instant::now();
        let mut banned = 0;
        for page in &pages {
            banned += engine.apply_fleet(page, &policy).unwrap().banned;
        }
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(banned, rows, "every remote ban applied");
        println!("RESULT apply_rows {rows} rows");
        println!("RESULT apply_time {secs:.2} s");
        println!("RESULT apply_rate {:.0} bans/s", rows as f64 / secs);
        engine.destroy(&set).unwrap();
        drop(engine);

        // The floor: the same elements in one nft transaction.
        nft_floor(rows);
        drop(ledger);
        let _ = std::fs::remove_dir_all(&dir);
    });
}

fn nft_floor(rows: usize) {
    let mut script =
        String::from("add table inet floor\nadd set inet floor s { type ipv4_addr; flags timeout; size 4194304; }\n");
    for chunk in (0..rows).collect::<Vec<_>>().chunks(PAGE) {
        script.push_str("add element inet floor s { ");
        for (n, &i) in chunk.iter().enumerate() {
            if n > 0 {
                script.push_str(", ");
            }
            script.push_str(&format!("{} timeout 86400s", address(i)));
        }
        script.push_str(" }\n");
    }
    let started = Instant::now();
    let mut nft = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    nft.stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(nft.wait().unwrap().success(), "nft -f");
    let secs = started.elapsed().as_secs_f64();
    println!("RESULT nft_file_time {secs:.2} s");
    println!("RESULT nft_file_rate {:.0} elements/s", rows as f64 / secs);
    netns::run("nft", &["delete", "table", "inet", "floor"]);
}
