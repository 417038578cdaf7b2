//! `banset replace SET --file F | --rir F --country CC`: the set's whole
//! content swapped for a list, atomically, refused when the list shrank
//! past `--max-shrink` (a truncated download must not lock users out of
//! an allow-only set, nor free a ban list's members).

use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::Result;
use banset_core::feed::rir::Country;
use banset_core::feed::{self, Format};
use banset_core::{AddOptions, BanRequest, SetSpec, Timeout};

use crate::args::ReplaceArgs;
use crate::context::Context;
use crate::errors::{usage, Usage};
use crate::output::counted;
use crate::output::Progress;

pub fn run(ctx: &mut Context, args: ReplaceArgs) -> Result<Option<i32>> {
    let name = crate::args::set_name(&args.set)?;
    let timeout = args.timeout.as_deref().map(Timeout::parse).transpose()?;
    let countries = match &args.country {
        Some(list) => Country::parse_list(list).map_err(Usage)?,
        None => Vec::new(),
    };
    let (path, format) = match (&args.file, &args.rir) {
        (Some(path), None) => (path, Format::CidrList),
        (None, Some(path)) => (path, Format::Rir(&countries)),
        _ => usage!("replace takes one of --file PATH and --rir PATH"),
    };
    // The set decides how the list is read (merged or not, which
    // families). The engine reads the spec again in its transaction; a
    // set re-created in between with other options fails there.
    let spec = ctx
        .fw
        .ledger
        .read()?
        .set_spec(&name)?
        .ok_or_else(|| banset_core::Error::UnknownSet(name.clone()))?;
    let feed = read_feed(path, &spec, format)?;
    if feed.other_family > 0 && !ctx.global.quiet {
        // Said without --verbose: the set will not hold all the file has.
        eprintln!(
            "banset: {name}: left out {} of the address family the set does not hold (it holds {})",
            counted(feed.other_family, "entry", "entries"),
            spec.families.name()
        );
    }
    let targets = feed.targets;
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
        max_shrink: (!args.force).then_some(args.max_shrink),
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

/// The feed at `path` (`-`: standard input) read for `spec`. Every
/// malformed line is an input error (exit 2) naming file and line.
fn read_feed(path: &Path, spec: &SetSpec, format: Format<'_>) -> Result<feed::Feed> {
    let stdin = path == Path::new("-");
    let shown = if stdin {
        "standard input".to_string()
    } else {
        path.display().to_string()
    };
    let reader: Box<dyn Read> = if stdin {
        Box::new(std::io::stdin().lock())
    } else {
        match std::fs::File::open(path) {
            Ok(f) => Box::new(f),
            Err(e) => return Err(crate::errors::input_file_error("file", path, e)),
        }
    };
    let reader = BufReader::with_capacity(1 << 16, reader);
    feed::read_for(spec, format, reader, &shown).map_err(|e| Usage(e.to_string()).into())
}
