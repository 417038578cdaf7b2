use anyhow::Result;
use banset_core::{AddOptions, BanRequest, Timeout};

use crate::args::ReplaceArgs;
use crate::context::Context;
use crate::output::counted;
use crate::output::Progress;
use crate::targets_input::read_file;

pub fn run(ctx: &mut Context, args: ReplaceArgs) -> Result<Option<i32>> {
    let name = crate::args::set_name(&args.set)?;
    let timeout = args.timeout.as_deref().map(Timeout::parse).transpose()?;
    let targets = read_file(&args.file)?;
    let progress = Progress::new(targets.len(), ctx.global.quiet);
    progress.step(&format!(
        "replacing with {}",
        counted(targets.len(), "target", "targets")
    ));
    let requests: Vec<BanRequest> = targets
        .into_iter()
        .map(|target| BanRequest {
            target,
            timeout,
            since: None,
            comment: args.comment.clone(),
        })
        .collect();
    let opts = AddOptions {
        force: args.force,
        create_with: None,
        ..AddOptions::default()
    };
    let report = ctx.engine().replace(&name, &requests, &opts)?;
    progress.done(&format!(
        "replaced with {}",
        counted(report.applied, "target", "targets")
    ));
    let did = ctx.did("now holds", "would hold");
    ctx.info(format_args!(
        "{name}: {did} {}",
        counted(report.applied, "ban", "bans")
    ));
    Ok(None)
}
