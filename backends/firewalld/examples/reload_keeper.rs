//! The keeper's firewalld part, stand-alone: re-applies the rules of the
//! named firewalld-backed sets (created by `banset create SET --backend
//! firewalld` with default options) every time firewalld reloads or
//! restarts. `bench/run` uses it to time the reload self-heal.
//!
//!     cargo build --release --example reload_keeper -p banset-firewalld
//!     target/release/examples/reload_keeper f2b-sshd f2b-postfix
//!
//! It prints `ready` once subscribed, then one line per event:
//! `EVENT DONE_UNIX_SECONDS REAPPLY_MS` (the wall-clock time when every rule
//! was back, and how long re-applying took after the signal arrived).

use std::io::Write;
use std::sync::mpsc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use banset_core::{Backend, BackendKind, SetName, SetSpec};
use banset_firewalld::{spawn_reload_watcher, FirewalldBackend};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let specs: Vec<SetSpec> = std::env::args()
        .skip(1)
        .map(|name| SetName::new(&name).map(|n| SetSpec::new(n, BackendKind::Firewalld)))
        .collect::<Result<_, _>>()?;
    if specs.is_empty() {
        return Err("usage: reload_keeper SET...".into());
    }
    let backend = FirewalldBackend::open()?;
    let (tx, rx) = mpsc::channel();
    spawn_reload_watcher(move |event| {
        let _ = tx.send((event, Instant::now()));
    })?;
    println!("ready");
    std::io::stdout().flush()?;
    for (event, seen) in rx {
        if !event.needs_reapply() {
            continue;
        }
        for spec in &specs {
            backend.ensure_set(spec)?;
        }
        let done = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
        println!(
            "{event:?} {done:.6} {:.3}",
            seen.elapsed().as_secs_f64() * 1000.0
        );
        std::io::stdout().flush()?;
    }
    Ok(())
}
