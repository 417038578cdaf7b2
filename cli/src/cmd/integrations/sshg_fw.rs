//! `banset sshg-fw SET`: an sshguard firewall backend.
//!
//! sshguard's blocker writes one command per line to its backend's standard
//! input (`BACKEND=` in sshguard.conf):
//!
//! - `block ADDR 4|6 CIDR`: block ADDR with its host bits beyond CIDR
//!   cleared (sshguard sends the attacker's own address and the configured
//!   `IPV4_SUBNET`/`IPV6_SUBNET`);
//! - `release ADDR 4|6 CIDR`: unblock it;
//! - `flush`: unblock everything;
//! - `flushonexit`: unblock everything when the input ends or on
//!   INT/TERM/HUP.
//!
//! sshguard owns the timing (it releases blocks itself), so blocks carry no
//! kernel timeout unless `--timeout` asks for a safety net. Commands of one
//! kind that are already waiting in the pipe are applied as one batch: an
//! attack wave or sshguard re-blocking its blacklist at start costs one
//! kernel batch and one ledger transaction, not one per address.
//!
//! The stock backends' conventions are kept: exit 69 when the firewall
//! cannot be set up at start, 65 on an unknown command. Fields after the
//! fourth (some distributions append a service code) are ignored. A bad
//! address, or one banset never bans (loopback, the host's own, the
//! configured ignore list), is reported on stderr and skipped: one bad line
//! must not take the backend, and every later block, down.

use std::io;

use anyhow::Result;
use banset_core::{AddOptions, BanRequest, SetName, SetSpec, Target, Timeout};

use crate::args::SshgFwArgs;
use crate::context::Context;
use crate::set_options::build_spec;

/// sshguard's backends exit with these (sysexits' EX_UNAVAILABLE and
/// EX_DATAERR).
const EXIT_INIT_FAILED: i32 = 69;
const EXIT_BAD_COMMAND: i32 = 65;

/// Longest line accepted; sshguard's are under 64 bytes. Longer input is
/// refused rather than buffered without bound.
const MAX_LINE: usize = 512;

pub fn run(ctx: &mut Context, args: SshgFwArgs) -> Result<Option<i32>> {
    let name = crate::args::set_name(&args.set)?;
    // Any failure before the first line is read, bad options included, is
    // what sshguard's backends report as "Could not initialize firewall".
    let (spec, timeout) = match init(ctx, name, &args) {
        Ok(set) => set,
        Err(e) => {
            eprintln!(
                "banset: sshg-fw: Could not initialize firewall: {}",
                crate::errors::one_line(&e)
            );
            return Ok(Some(EXIT_INIT_FAILED));
        }
    };
    let mut stdin = crate::sys::StopSignals::install()?;
    let mut backend = SshgBackend {
        ctx,
        spec,
        timeout,
        flush_on_exit: false,
    };
    let code = backend.serve(&mut stdin)?;
    Ok(Some(code))
}

/// Creates the set, or brings an existing one back to what the ledger holds
/// (sshguard re-sends its blacklist at start; other blocks of a previous run
/// are still recorded). Returns the set and the timeout of each block.
fn init(ctx: &mut Context, name: SetName, args: &SshgFwArgs) -> Result<(SetSpec, Timeout)> {
    let timeout = match args.timeout.as_deref() {
        Some(t) => Timeout::parse(t)?,
        None => Timeout::Never,
    };
    let exists = ctx.fw.ledger.read()?.set_spec(&name)?.is_some();
    let spec = build_spec(
        name,
        &args.options,
        Some(timeout),
        &ctx.config,
        !exists,
        ctx.global.dry_run,
    )?;
    if exists {
        ctx.engine().sync(Some(&spec.name))?;
    } else {
        ctx.engine().create(&spec)?;
    }
    Ok((spec, timeout))
}

/// One command line, parsed.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    Block(Target),
    Release(Target),
    Flush,
    FlushOnExit,
    Empty,
}

/// Why a line was not understood: a bad argument is skipped, an unknown
/// command ends the backend (sshguard's convention).
#[derive(Debug, PartialEq, Eq)]
enum BadLine {
    Argument(String),
    Command(String),
}

fn parse_line(line: &[u8]) -> Result<Line, BadLine> {
    let Ok(text) = std::str::from_utf8(line) else {
        return Err(BadLine::Command("a line that is not UTF-8 text".into()));
    };
    let mut words = text.split_ascii_whitespace();
    let Some(command) = words.next() else {
        return Ok(Line::Empty);
    };
    match command {
        "block" | "release" => {
            let target = parse_address(&mut words, text)?;
            Ok(if command == "block" {
                Line::Block(target)
            } else {
                Line::Release(target)
            })
        }
        "flush" => Ok(Line::Flush),
        "flushonexit" => Ok(Line::FlushOnExit),
        other => Err(BadLine::Command(format!("unknown command {other:?}"))),
    }
}

/// `ADDR 4|6 CIDR`, strictly: the kind must match the address, and the
/// prefix length must fit it.
fn parse_address<'a>(
    words: &mut impl Iterator<Item = &'a str>,
    line: &str,
) -> Result<Target, BadLine> {
    let bad = |why: &str| BadLine::Argument(format!("{line:?}: {why}"));
    let (Some(addr), Some(kind), Some(cidr)) = (words.next(), words.next(), words.next()) else {
        return Err(bad("expected ADDRESS 4|6 PREFIX_LENGTH"));
    };
    let addr: std::net::IpAddr = addr
        .parse()
        .map_err(|_| bad("not an IPv4 or IPv6 address"))?;
    match (kind, addr) {
        ("4", std::net::IpAddr::V4(_)) | ("6", std::net::IpAddr::V6(_)) => {}
        ("4" | "6", _) => return Err(bad("the address does not match its kind (4 or 6)")),
        _ => return Err(bad("the address kind must be 4 or 6")),
    }
    if cidr.is_empty() || cidr.len() > 3 || !cidr.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("the prefix length must be a number"));
    }
    let len: u8 = cidr.parse().map_err(|_| bad("bad prefix length"))?;
    // The core's one constructor refuses what is never banned (0.0.0.0,
    // broadcast, multicast and their IPv6 disguises) for every path alike.
    Target::prefix(addr, len).map_err(|e| bad(e.reason))
}

/// Where the command lines come from: standard input in the real backend,
/// a byte slice in tests.
trait Chunks {
    /// Fills `buf` with the next bytes; `Ok(0)` at the end of the input.
    /// An interruption by a stop signal is an `Interrupted` error.
    fn read_chunk(&mut self, buf: &mut [u8]) -> io::Result<usize>;
}

/// Standard input, with INT, TERM and HUP ending the loop (flushing first
/// if asked) instead of killing the process; a blocked read returns at once.
impl Chunks for crate::sys::StopSignals {
    fn read_chunk(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_stdin(buf)
    }
}

/// A run of commands of one kind, applied together.
enum Pending {
    None,
    Block(Vec<Target>),
    Release(Vec<Target>),
}

struct SshgBackend<'c> {
    ctx: &'c mut Context,
    spec: SetSpec,
    timeout: Timeout,
    flush_on_exit: bool,
}

impl SshgBackend<'_> {
    fn name(&self) -> &SetName {
        &self.spec.name
    }

    /// Reads and applies commands until the input ends, a stop signal
    /// arrives, or an unknown command; returns the exit code.
    fn serve(&mut self, input: &mut impl Chunks) -> Result<i32> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut partial: Vec<u8> = Vec::new();
        let mut skipping_long_line = false;
        let code = loop {
            let n = match input.read_chunk(&mut buf) {
                Ok(0) => break 0,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => break 0,
                Err(e) => {
                    return Err(anyhow::Error::new(e).context("sshg-fw: reading standard input"))
                }
            };
            let mut pending = Pending::None;
            let mut rest = &buf[..n];
            let mut stop_code = None;
            while let Some(end) = rest.iter().position(|&b| b == b'\n') {
                let (head, tail) = (&rest[..end], &rest[end + 1..]);
                rest = tail;
                if skipping_long_line {
                    skipping_long_line = false;
                    partial.clear();
                    continue;
                }
                if partial.len() + head.len() > MAX_LINE {
                    eprintln!("banset: sshg-fw: a line longer than {MAX_LINE} bytes; skipped");
                    partial.clear();
                    continue;
                }
                partial.extend_from_slice(head);
                let line = std::mem::take(&mut partial);
                if let Some(code) = self.take_line(&line, &mut pending) {
                    stop_code = Some(code);
                    break;
                }
            }
            self.apply(std::mem::replace(&mut pending, Pending::None));
            if let Some(code) = stop_code {
                break code;
            }
            if !skipping_long_line {
                partial.extend_from_slice(rest);
                if partial.len() > MAX_LINE {
                    eprintln!("banset: sshg-fw: a line longer than {MAX_LINE} bytes; skipped");
                    partial.clear();
                    skipping_long_line = true;
                }
            }
        };
        if code == 0 && self.flush_on_exit {
            self.flush();
        }
        Ok(code)
    }

    /// Adds one line to the pending run, applying the run first when the
    /// line is of another kind. `Some(code)` ends the backend.
    fn take_line(&mut self, line: &[u8], pending: &mut Pending) -> Option<i32> {
        match parse_line(line) {
            Ok(Line::Empty) => {}
            Ok(Line::Block(t)) => match pending {
                Pending::Block(list) => list.push(t),
                _ => self.apply(std::mem::replace(pending, Pending::Block(vec![t]))),
            },
            Ok(Line::Release(t)) => match pending {
                Pending::Release(list) => list.push(t),
                _ => self.apply(std::mem::replace(pending, Pending::Release(vec![t]))),
            },
            Ok(Line::Flush) => {
                self.apply(std::mem::replace(pending, Pending::None));
                self.flush();
            }
            Ok(Line::FlushOnExit) => self.flush_on_exit = true,
            Err(BadLine::Argument(why)) => eprintln!("banset: sshg-fw: {why}; skipped"),
            Err(BadLine::Command(why)) => {
                self.apply(std::mem::replace(pending, Pending::None));
                eprintln!("banset: sshg-fw: Invalid command: {why}");
                return Some(EXIT_BAD_COMMAND);
            }
        }
        None
    }

    fn apply(&mut self, pending: Pending) {
        match pending {
            Pending::None => {}
            Pending::Block(targets) => self.block(&targets),
            Pending::Release(targets) => self.release(&targets),
        }
    }

    /// One batch; when it fails (one refused address fails all), each
    /// address is tried alone so the others still get blocked.
    fn block(&mut self, targets: &[Target]) {
        let opts = AddOptions {
            force: false,
            create_with: Some(self.spec.clone()),
            ..AddOptions::default()
        };
        let request = |t: &Target| BanRequest {
            target: *t,
            timeout: Some(self.timeout),
            since: None,
            comment: Some("sshguard".into()),
        };
        let all: Vec<BanRequest> = targets.iter().map(request).collect();
        let name = self.name().clone();
        let Err(err) = self.ctx.engine().add(&name, &all, &opts) else {
            return;
        };
        if targets.len() == 1 {
            eprintln!("banset: sshg-fw: block {}: {err}", targets[0]);
            return;
        }
        for t in targets {
            if let Err(e) = self.ctx.engine().add(&name, &[request(t)], &opts) {
                eprintln!("banset: sshg-fw: block {t}: {e}");
            }
        }
    }

    fn release(&mut self, targets: &[Target]) {
        let name = self.name().clone();
        if let Err(e) = self.ctx.engine().del(&name, targets) {
            eprintln!("banset: sshg-fw: release: {e}");
        }
    }

    fn flush(&mut self) {
        let name = self.name().clone();
        if let Err(e) = self.ctx.engine().flush(&name) {
            eprintln!("banset: sshg-fw: flush: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(s: &str) -> Target {
        Target::parse(s).unwrap()
    }

    #[test]
    fn lines_as_sshguard_writes_them() {
        assert_eq!(
            parse_line(b"block 192.0.2.7 4 32"),
            Ok(Line::Block(target("192.0.2.7")))
        );
        // the backend applies the mask
        assert_eq!(
            parse_line(b"block 192.0.2.7 4 24"),
            Ok(Line::Block(target("192.0.2.0/24")))
        );
        assert_eq!(
            parse_line(b"release 2001:db8::1:2 6 64"),
            Ok(Line::Release(target("2001:db8::/64")))
        );
        // a fourth field (a service code some builds append) is ignored
        assert_eq!(
            parse_line(b"block 192.0.2.7 4 32 100"),
            Ok(Line::Block(target("192.0.2.7")))
        );
        assert_eq!(parse_line(b"flush"), Ok(Line::Flush));
        assert_eq!(parse_line(b"flushonexit"), Ok(Line::FlushOnExit));
        assert_eq!(parse_line(b"   "), Ok(Line::Empty));
    }

    #[test]
    fn bad_arguments_are_skipped_unknown_commands_are_fatal() {
        for bad in [
            "block 192.0.2.7 6 32",
            "block 2001:db8::1 4 128",
            "block 192.0.2.7 4 33",
            "block 192.0.2.7 4 -1",
            "block 192.0.2.7 5 32",
            "block 192.0.2.7",
            "block ;rm${IFS}-rf 4 32",
            "block 0.0.0.0 4 32",
            "block :: 6 128",
            "block ::ffff:0.0.0.0 6 128",
            "block 255.255.255.255 4 32",
            "block 239.1.2.3 4 32",
            "block 64:ff9b::0.0.0.0 6 128",
            "release 192.0.2.7 4 1000",
        ] {
            match parse_line(bad.as_bytes()) {
                Err(BadLine::Argument(why)) => assert!(why.contains(bad), "{bad}: {why}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        for bad in ["BLOCK 1.2.3.4 4 32", "unblock 1.2.3.4 4 32", "rm -rf /"] {
            assert!(
                matches!(parse_line(bad.as_bytes()), Err(BadLine::Command(_))),
                "{bad}"
            );
        }
        assert!(matches!(parse_line(b"\xff\xfe"), Err(BadLine::Command(_))));
    }
}
