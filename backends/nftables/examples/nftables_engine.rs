//! banset as a library: ban, list and unban through banset-core's `Engine`
//! with the nftables backend, keeping a ledger like the CLI does.
//!
//! It changes the nftables ruleset of the network namespace it runs in, so
//! try it in a private one:
//!
//!     cargo build --example nftables_engine -p banset-nftables
//!     sudo unshare --net target/debug/examples/nftables_engine

use banset_core::{
    AddOptions, Allowlist, BackendKind, BanRequest, Engine, Ledger, SetName, SetSpec, SystemClock,
    Target, Timeout,
};
use banset_nftables::NftablesBackend;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let nftables = NftablesBackend::open()?;
    let state = std::env::temp_dir().join(format!("banset-example-{}", std::process::id()));
    std::fs::create_dir_all(&state)?;
    let mut ledger = Ledger::open(&state.join("ledger.db"))?;
    let allowlist = Allowlist::new();
    let mut engine = Engine {
        ledger: &mut ledger,
        backends: &nftables,
        clock: &SystemClock,
        allowlist: &allowlist,
        dry_run: false,
    };

    // Ban two sources for a week; the set is created on first use.
    let name = SetName::new("example")?;
    let spec = SetSpec::new(name.clone(), BackendKind::Nftables);
    let bans: Vec<BanRequest> = ["192.0.2.1", "2001:db8::/64"]
        .into_iter()
        .map(|t| -> Result<BanRequest, Box<dyn std::error::Error>> {
            Ok(BanRequest {
                timeout: Some(Timeout::parse("7d")?),
                ..BanRequest::new(Target::parse(t)?)
            })
        })
        .collect::<Result<_, _>>()?;
    let options = AddOptions {
        force: false,
        create_with: Some(spec),
        ..AddOptions::default()
    };
    engine.add(&name, &bans, &options)?;

    // What the kernel holds, with the time left.
    for set in engine.list(Some(&name))? {
        for member in set.members {
            let left = member
                .kernel_remaining
                .map_or("permanent".to_string(), |s| format!("{s} s left"));
            println!("{}: {} ({left})", set.spec.name, member.target);
        }
    }

    // Unban one, ask the kernel, then remove the set altogether.
    let unbanned = Target::parse("192.0.2.1")?;
    engine.del(&name, &[unbanned])?;
    println!("192.0.2.1 banned: {}", engine.test(&name, &unbanned)?);
    engine.destroy(&name)?;
    std::fs::remove_dir_all(&state)?;
    Ok(())
}
