//! `banset replace SET --file F | --rir F --country CC`: the set's whole
//! content swapped for a list, atomically, refused when the list shrank
//! past `--max-shrink` (a truncated download must not free a ban list's
//! members) or, for an allow-only set, when it leaves out this ssh session
//! or an established connection to the set's ports (the lockout guard).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::Result;
use banset_core::feed::rir::Country;
use banset_core::feed::{self, Format, Source};
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
        Some(list) => Country::parse_list(list).map_err(|e| Usage(e.to_string()))?,
        None => Vec::new(),
    };
    // The set decides how the lists are read (merged or not, which
    // families). The engine reads the spec again in its transaction; a
    // set re-created in between with other options fails there.
    let spec = ctx
        .fw
        .ledger
        .read()?
        .set_spec(&name)?
        .ok_or_else(|| banset_core::Error::UnknownSet(name.clone()))?;
    let mut sources: Vec<(&PathBuf, Format<'_>)> = Vec::new();
    if let Some(path) = &args.rir {
        sources.push((path, Format::Rir(&countries)));
    }
    if let Some(path) = &args.file {
        sources.push((path, Format::CidrList));
    }
    let feed = read_feed(&spec, &sources)?;
    if feed.other_family > 0 && !ctx.global.quiet {
        // Said without --verbose: the set will not hold all the file has.
        eprintln!(
            "banset: {name}: left out {} of the address family the set does not hold (it holds {})",
            counted(feed.other_family, "entry", "entries"),
            spec.families.name()
        );
    }
    let targets = feed.targets;
    let lasts = timeout.unwrap_or(spec.timeout);
    if !spec.policy.is_ban() && lasts != Timeout::Never && !ctx.global.quiet {
        // Members that run out empty an allow-only set, and an empty one
        // blocks every source on its ports: worth saying every time.
        eprintln!(
            "banset: warning: {name}: these members expire in {lasts} (the {} timeout); \
             an allow-only set that empties blocks every source on its ports: \
             pass --timeout never, or replace again before then",
            if timeout.is_some() {
                "--timeout"
            } else {
                "set's"
            }
        );
    }
    // The new content as if the set were created with it: an allow-only
    // set must keep this ssh session and every established connection to
    // its ports, and must not become empty.
    crate::lockout::guard(ctx, None, &spec, &targets, args.force)?;
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

/// The feeds at `sources` (`-`: standard input, once) read together for
/// `spec`. Every malformed line is an input error (exit 2) naming file and
/// line.
fn read_feed(spec: &SetSpec, sources: &[(&PathBuf, Format<'_>)]) -> Result<feed::Feed> {
    if sources.iter().filter(|(p, _)| is_stdin(p)).count() > 1 {
        usage!("standard input (-) can be read once: name a file for the other list");
    }
    let mut opened: Vec<(String, Format<'_>, Box<dyn BufRead>)> = Vec::new();
    for &(path, format) in sources {
        let (shown, reader): (String, Box<dyn Read>) = if is_stdin(path) {
            (
                "standard input".to_string(),
                Box::new(std::io::stdin().lock()),
            )
        } else {
            match std::fs::File::open(path) {
                Ok(f) => (path.display().to_string(), Box::new(f)),
                Err(e) => return Err(crate::errors::input_file_error("file", path, e)),
            }
        };
        opened.push((
            shown,
            format,
            Box::new(BufReader::with_capacity(1 << 16, reader)),
        ));
    }
    let sources = opened.iter_mut().map(|(name, format, reader)| Source {
        format: *format,
        reader,
        name,
    });
    feed::read_for(spec, sources).map_err(|e| Usage(e.to_string()).into())
}

fn is_stdin(path: &Path) -> bool {
    path == Path::new("-")
}
