use anyhow::Result;
use banset_core::{
    AddOptions, AddRecord, BackendKind, BanRequest, FleetPublish, SetSpec, SpecChange, Timeout,
};

use crate::args::AddArgs;
use crate::context::Context;
use crate::errors::usage;
use crate::output::{describe_spec, Progress};
use crate::set_options::{build_spec, changed_spec, options_for};
use crate::targets_input::read_targets;

pub fn run(ctx: &mut Context, args: AddArgs) -> Result<Option<i32>> {
    let name = crate::args::set_name(&args.set)?;
    let timeout = args.timeout.as_deref().map(Timeout::parse).transpose()?;
    // The spec a new set gets; the set's own default timeout follows the
    // first ban's, so `add f2b-x IP --timeout 604800` makes a 7-day set.
    // A set the config describes ([sets.NAME]) is created as described,
    // unless the command line says otherwise. Detecting the backend (a
    // D-Bus call) happens only for a set the ledger does not know: adds to
    // existing sets stay as fast as they were.
    let existing = ctx.fw.ledger.read()?.set_spec(&name)?;
    let is_new = existing.is_none();
    if let Some(existing) = &existing {
        refuse_other_options(existing, &args)?;
        if args.fleet && existing.policy == banset_core::SetPolicy::AllowOnly {
            usage!("--fleet: set {name} is allow-only; its members are let in, not banned, so they are not shared");
        }
    }
    let spec = match ctx.config.sets.get(name.as_str()) {
        Some(set) if args.options.is_empty() => build_spec(
            name.clone(),
            &set.options(),
            timeout.or(set.timeout),
            &ctx.config,
            is_new,
            ctx.global.dry_run,
        )?,
        _ => build_spec(
            name.clone(),
            &args.options,
            timeout,
            &ctx.config,
            is_new,
            ctx.global.dry_run,
        )?,
    };
    if args.kill_states {
        // The set's backend: the recorded one, or the one a new set gets.
        let backend = match ctx.fw.ledger.read()?.set_spec(&name)? {
            Some(existing) => existing.backend,
            None => spec.backend,
        };
        if backend != BackendKind::Pf {
            usage!(
                "--kill-states needs a pf set; set {name} is on {backend}, whose blocking rule \
                 already drops every packet of a banned source, established connections included"
            );
        }
    }
    let targets = read_targets(&args.input)?;
    let progress = Progress::new(targets.len(), ctx.global.quiet);
    progress.step(&format!(
        "banning {}",
        crate::output::counted(targets.len(), "target", "targets")
    ));
    let requests: Vec<BanRequest> = targets
        .into_iter()
        .map(|target| BanRequest {
            target,
            timeout,
            since: args.since,
            comment: args.comment.clone(),
        })
        .collect();
    if is_new && !args.no_create {
        let coming: Vec<_> = requests.iter().map(|r| r.target).collect();
        crate::lockout::guard(ctx, None, &spec, &coming, args.force)?;
    }
    let opts = AddOptions {
        force: args.force,
        create_with: (!args.no_create).then(|| spec.clone()),
        kill_states: args.kill_states,
        ..AddOptions::default()
    };
    // --fleet: the outbox row is written in the ban's own transaction, so
    // the ban is published even if this command dies right after.
    let record = AddRecord {
        fleet: args.fleet.then_some(FleetPublish { jail: None }),
        ..AddRecord::default()
    };
    let report = ctx
        .engine()
        .add_recorded(&name, &requests, &opts, &record)?;
    if args.fleet && !ctx.global.dry_run {
        // Sent now when the engine answers (bounded by the client's
        // timeouts); the local ban stands either way.
        let said = crate::cmd::fleet::sync::push_after_add(ctx);
        ctx.notice(said);
    }
    progress.done(&format!(
        "banned {}",
        crate::output::counted(report.applied, "target", "targets")
    ));
    for warning in &report.warnings {
        // Even with --quiet: the ban stands, but not as asked.
        eprintln!("banset: {warning}");
    }
    if report.created_set {
        ctx.info(format_args!("created {}", describe_spec(&spec)));
    }
    if report.repaired {
        let (did, restore) = if ctx.global.dry_run {
            ("is", "would restore")
        } else {
            ("was", "restored")
        };
        ctx.notice(format_args!(
            "set {name} {did} missing from the kernel; {restore} it with every ban from the ledger"
        ));
    }
    for target in &report.already_over {
        ctx.info(format_args!(
            "{target}: ban already over (--since), nothing to do"
        ));
    }
    if ctx.global.dry_run {
        ctx.info(format_args!("{name}: would ban {}", report.applied));
    } else {
        ctx.info(format_args!("{name}: {} banned", report.applied));
    }
    Ok(None)
}

/// Options given for a set that exists must be the set's: `add` used to
/// take `--ports 22` for a set blocking port 25 and exit 0 with port 25
/// still the one blocked. Changing a set is `set-options`' job.
fn refuse_other_options(existing: &SetSpec, args: &AddArgs) -> Result<()> {
    if args.options.is_empty() {
        return Ok(());
    }
    let wanted = changed_spec(existing, &args.options, None, true)?;
    let change = SpecChange::between(existing, &wanted);
    if change.is_empty() {
        return Ok(());
    }
    let name = &existing.name;
    let mut what: Vec<String> = change.in_place.iter().map(|d| d.to_string()).collect();
    what.extend(change.refused.iter().map(|r| r.difference.to_string()));
    if change.refused.is_empty() {
        usage!(
            "set {name} exists with other options ({}); add does not change a set: \
             `banset set-options {name} {}` changes it in place, keeping its bans",
            what.join(", "),
            options_for(existing, &wanted)
        );
    }
    usage!(
        "set {name} exists with other options ({}); add does not change a set, and {}",
        what.join(", "),
        change.describe_refused()
    );
}
