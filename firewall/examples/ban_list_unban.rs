//! banset as a library: open the default backend and the ledger in a state
//! directory, ban 1.2.3.4 for an hour in set X, list, unban.
//!
//! It changes the firewall of the network namespace it runs in, so try it
//! in a private one:
//!
//!     cargo build --example ban_list_unban -p banset-firewall
//!     sudo unshare --net target/debug/examples/ban_list_unban /tmp/banset-example
//!
//! A second argument names the backend (`memory` touches no kernel).

use banset_firewall::{
    default_backend, AddOptions, BackendKind, BanRequest, Firewall, SetName, SetSpec, StateDir,
    Target, Timeout,
};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let state = StateDir::new(
        args.next()
            .ok_or("usage: ban_list_unban STATE_DIR [BACKEND]")?,
    );
    let backend = match args.next() {
        Some(name) => name.parse()?,
        None => default_backend(),
    };
    for line in run(&state, backend)? {
        println!("{line}");
    }
    Ok(())
}

/// The whole flow; returns what it would print.
pub fn run(state: &StateDir, backend: BackendKind) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut fw = Firewall::open(state)?;
    let set = SetName::new("X")?;
    let ban = BanRequest {
        timeout: Some(Timeout::parse("1h")?),
        comment: Some("from the library example".into()),
        ..BanRequest::new(Target::parse("1.2.3.4")?)
    };
    let options = AddOptions {
        // The set is created on first use.
        create_with: Some(SetSpec::new(set.clone(), backend)),
        ..AddOptions::default()
    };
    fw.engine().add(&set, &[ban], &options)?;

    // What the kernel holds, with the time left.
    for listing in fw.engine().list(Some(&set))? {
        for member in listing.members {
            let left = member
                .kernel_remaining
                .map_or("permanent".to_string(), |s| format!("{s} s left"));
            out.push(format!("{}: {} ({left})", listing.spec.name, member.target));
        }
    }

    // Unban, ask the kernel, then remove the set altogether.
    let unbanned = Target::parse("1.2.3.4")?;
    fw.engine().del(&set, &[unbanned])?;
    out.push(format!(
        "1.2.3.4 banned: {}",
        fw.engine().test(&set, &unbanned)?
    ));
    fw.engine().destroy(&set)?;
    Ok(out)
}
