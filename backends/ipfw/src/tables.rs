//! ipfw tables, two ways behind one trait:
//! - [`Native`]: `IP_FW3` socket options with the messages of [`crate::msg`]
//!   (FreeBSD 11–14): one system call per batch, per-entry results;
//! - [`Command`]: the `ipfw` command by argv (FreeBSD 15 and later, whose
//!   struct layout changed and is not verified yet): one process per batch.
//!
//! Only FreeBSD builds use these outside the tests.
#![cfg_attr(not(target_os = "freebsd"), allow(dead_code))]

use std::fmt;

use banset_core::errno::{
    EACCES, EBUSY, EEXIST, EFBIG, EINVAL, ENOENT, ENOMEM, ENOPROTOOPT, EPERM, ESRCH,
};
use banset_core::{BackendError, ErrorKind, ParseTargetError, Target};

use crate::msg::{self, result};
use crate::rule::{self, Runner};

/// The table operations the backend needs. Every method names the table;
/// a missing table is [`ErrorKind::NotFound`] except where said.
pub trait Tables: Send + Sync + fmt::Debug {
    /// The number of entries, or `None` when the table does not exist.
    fn count(&self, name: &str) -> Result<Option<usize>, BackendError>;
    /// Creates an address table of at most `limit` entries (0: no limit);
    /// an existing table is fine.
    fn create(&self, name: &str, limit: u32) -> Result<(), BackendError>;
    /// Removes the table; an absent one is fine.
    fn destroy(&self, name: &str) -> Result<(), BackendError>;
    /// Removes every entry.
    fn flush(&self, name: &str) -> Result<(), BackendError>;
    /// Exchanges the entries of tables `a` and `b` in one step: a rule
    /// matching against either sees the old entries or the new ones, never
    /// a mix. Both must exist and be of the same type.
    fn swap(&self, a: &str, b: &str) -> Result<(), BackendError>;
    /// Adds entries; present ones are fine.
    fn add(&self, name: &str, targets: &[Target]) -> Result<(), BackendError>;
    /// Deletes entries; absent ones are fine.
    fn del(&self, name: &str, targets: &[Target]) -> Result<(), BackendError>;
    /// The entries.
    fn list(&self, name: &str) -> Result<Vec<Target>, BackendError>;
}

/// Entries per `XADD`/`XDEL` call: 4,096 entries are 480 KiB, well under
/// the kernel's 16 MiB bound on a request.
pub const ENTRIES_PER_CALL: usize = 4096;

/// The `IP_FW3` socket option.
pub trait Sockopt: Send + Sync + fmt::Debug {
    /// `setsockopt(IPPROTO_IP, IP_FW3, buf)`; `Err(errno)`.
    fn set(&self, buf: &[u8]) -> Result<(), i32>;
    /// `getsockopt(IPPROTO_IP, IP_FW3, buf)`: the kernel reads the request
    /// from `buf` and writes its reply over it; returns the reply's length.
    fn get(&self, buf: &mut [u8]) -> Result<usize, i32>;
}

/// Tables over `IP_FW3` (FreeBSD 11–14).
#[derive(Debug)]
pub struct Native<S> {
    sock: S,
}

impl<S: Sockopt> Native<S> {
    /// Tables over `sock`.
    pub fn new(sock: S) -> Native<S> {
        Native { sock }
    }
}

/// Maps an errno of a table request, by number (`ipfw(8)`'s meanings).
pub fn ipfw_error(errno: i32, what: &str) -> BackendError {
    let (kind, text) = match errno {
        ESRCH => (ErrorKind::NotFound, "the table does not exist"),
        EFBIG => (ErrorKind::SetFull, "the table's limit is reached"),
        EACCES => (ErrorKind::Permission, "the table is locked"),
        EPERM => (ErrorKind::Permission, "permission denied; run as root"),
        EEXIST => (ErrorKind::Exists, "the record or table exists"),
        EBUSY => (
            ErrorKind::Other,
            "the table is in use by a rule banset did not create (find it with `ipfw list`)",
        ),
        EINVAL => (ErrorKind::Invalid, "ipfw refused the request as invalid"),
        ENOPROTOOPT => (
            ErrorKind::Unavailable,
            "ipfw is not loaded: `kenv net.inet.ip.fw.default_to_accept=1 && kldload ipfw` \
             (the kenv first, or the default deny rule cuts this host off)",
        ),
        _ => return BackendError::from_errno(errno, what),
    };
    BackendError::new(kind, what, text)
}

impl<S: Sockopt> Native<S> {
    fn info(&self, name: &str) -> Result<Option<msg::TableInfo>, BackendError> {
        let mut buf = msg::info(name);
        match self.sock.get(&mut buf) {
            Ok(n) => msg::parse_info(&buf[..n.min(buf.len())])
                .map(Some)
                .map_err(|why| {
                    BackendError::new(
                        ErrorKind::Other,
                        format!("ipfw table {name}"),
                        why.to_string(),
                    )
                }),
            Err(ESRCH) => Ok(None),
            Err(e) => Err(ipfw_error(e, &format!("look up ipfw table {name}"))),
        }
    }

    /// `XADD`/`XDEL` in chunks, checking every entry's result.
    fn modify(&self, opcode: u16, name: &str, targets: &[Target]) -> Result<(), BackendError> {
        let adding = opcode == msg::XADD;
        let verb = if adding { "add to" } else { "delete from" };
        for chunk in targets.chunks(ENTRIES_PER_CALL) {
            let mut buf = msg::modify(opcode, name, chunk, adding, adding);
            let what = format!("{verb} ipfw table {name}");
            match self.sock.get(&mut buf) {
                Ok(_) => {}
                // A delete of absent entries answers ENOENT; the results
                // below say which.
                Err(ENOENT) if !adding => {}
                Err(e) => return Err(ipfw_error(e, &what)),
            }
            let results = msg::parse_results(&buf, chunk.len())
                .map_err(|why| BackendError::new(ErrorKind::Other, &what, why.to_string()))?;
            for (target, r) in chunk.iter().zip(results) {
                let fine = match r {
                    result::ADDED | result::UPDATED => adding,
                    result::DELETED | result::NOTFOUND => !adding,
                    // Left untouched by a delete that stopped early on an
                    // absent entry: not there, or deleted by the next call.
                    result::IGNORED => !adding,
                    _ => false,
                };
                if !fine {
                    let (kind, why) = match r {
                        result::LIMIT => (ErrorKind::SetFull, "the table's limit is reached"),
                        result::EXISTS => (ErrorKind::Exists, "the record exists"),
                        _ => (ErrorKind::Other, "the kernel did not apply it"),
                    };
                    return Err(BackendError::new(
                        kind,
                        format!("{what}, entry {target}"),
                        format!("{why} (result {r})"),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl<S: Sockopt> Tables for Native<S> {
    fn count(&self, name: &str) -> Result<Option<usize>, BackendError> {
        Ok(self.info(name)?.map(|i| i.count as usize))
    }

    fn create(&self, name: &str, limit: u32) -> Result<(), BackendError> {
        match self.sock.set(&msg::create(name, limit)) {
            Ok(()) | Err(EEXIST) => Ok(()),
            Err(e) => Err(ipfw_error(e, &format!("create ipfw table {name}"))),
        }
    }

    fn destroy(&self, name: &str) -> Result<(), BackendError> {
        match self.sock.set(&msg::header_only(msg::XDESTROY, name)) {
            Ok(()) | Err(ESRCH) => Ok(()),
            Err(e) => Err(ipfw_error(e, &format!("destroy ipfw table {name}"))),
        }
    }

    fn flush(&self, name: &str) -> Result<(), BackendError> {
        self.sock
            .set(&msg::header_only(msg::XFLUSH, name))
            .map_err(|e| ipfw_error(e, &format!("flush ipfw table {name}")))
    }

    fn swap(&self, a: &str, b: &str) -> Result<(), BackendError> {
        let what = format!("swap ipfw tables {a} and {b}");
        self.sock.set(&msg::swap(a, b)).map_err(|e| match e {
            // `swap_tables()` refuses tables of different types or value
            // types with EINVAL, as `ipfw(8)`'s "check types" says.
            EINVAL => BackendError::new(
                ErrorKind::Invalid,
                what,
                "the tables differ in type or value type (was one made outside banset?)",
            ),
            e => ipfw_error(e, &what),
        })
    }

    fn add(&self, name: &str, targets: &[Target]) -> Result<(), BackendError> {
        self.modify(msg::XADD, name, targets)
    }

    fn del(&self, name: &str, targets: &[Target]) -> Result<(), BackendError> {
        self.modify(msg::XDEL, name, targets)
    }

    fn list(&self, name: &str) -> Result<Vec<Target>, BackendError> {
        let what = format!("list ipfw table {name}");
        for _ in 0..8 {
            let info = self.info(name)?.ok_or_else(|| ipfw_error(ESRCH, &what))?;
            // Room for entries added between the two calls.
            let size = info.size as usize + 64 * msg::TENTRY_LEN;
            let mut buf = msg::list(name, size);
            match self.sock.get(&mut buf) {
                Ok(n) => {
                    return msg::parse_list(&buf[..n.min(buf.len())])
                        .map_err(|why| BackendError::new(ErrorKind::Other, &what, why.to_string()))
                }
                Err(ENOMEM) => continue,
                Err(e) => return Err(ipfw_error(e, &what)),
            }
        }
        Err(BackendError::new(
            ErrorKind::Other,
            what,
            "the table kept growing while it was listed",
        ))
    }
}

/// Tables through the `ipfw` command (FreeBSD 15 and later).
#[derive(Debug)]
pub struct Command<R> {
    ipfw: R,
}

impl<R: Runner> Command<R> {
    /// Tables through `ipfw`.
    pub fn new(ipfw: R) -> Command<R> {
        Command { ipfw }
    }

    fn run(&self, args: Vec<String>) -> Result<String, BackendError> {
        let outcome = self.ipfw.run(&args)?;
        if outcome.success() {
            Ok(outcome.stdout)
        } else {
            Err(rule::failure(&args, &outcome))
        }
    }
}

/// Keys per `ipfw table add/delete` run: well under any argv limit.
pub const KEYS_PER_RUN: usize = 500;

fn table_argv(name: &str, words: &[&str]) -> Vec<String> {
    let mut out = vec!["-q".to_string(), "table".into(), name.into()];
    out.extend(words.iter().map(|w| w.to_string()));
    out
}

/// The entries of `ipfw table NAME list`: `192.0.2.1/32 0` per line, after
/// a `--- table(NAME), set(0) ---` header.
pub fn parse_table_list(output: &str) -> Result<Vec<Target>, ListedLineError> {
    let mut out = Vec::new();
    for line in output.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("---") {
            continue;
        }
        let key = line.split_whitespace().next().unwrap_or("");
        let t = Target::parse(key).map_err(|why| ListedLineError {
            line: line.to_string(),
            why,
        })?;
        out.push(t);
    }
    Ok(out)
}

/// A line of `ipfw table NAME list` whose key is not a target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ipfw listed {line:?}: {why}")]
pub struct ListedLineError {
    /// The line, trimmed.
    pub line: String,
    /// Why its key is not a target.
    pub why: ParseTargetError,
}

impl<R: Runner> Tables for Command<R> {
    fn count(&self, name: &str) -> Result<Option<usize>, BackendError> {
        match self.list(name) {
            Ok(l) => Ok(Some(l.len())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn create(&self, name: &str, limit: u32) -> Result<(), BackendError> {
        if self.count(name)?.is_some() {
            return Ok(());
        }
        let limit = limit.to_string();
        let mut words = vec!["create", "type", "addr"];
        if limit != "0" {
            words.extend(["limit", &limit]);
        }
        self.run(table_argv(name, &words)).map(drop)
    }

    fn destroy(&self, name: &str) -> Result<(), BackendError> {
        match self.run(table_argv(name, &["destroy"])) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            other => other.map(drop),
        }
    }

    fn flush(&self, name: &str) -> Result<(), BackendError> {
        self.run(table_argv(name, &["flush"])).map(drop)
    }

    fn swap(&self, a: &str, b: &str) -> Result<(), BackendError> {
        self.run(table_argv(a, &["swap", b])).map(drop)
    }

    fn add(&self, name: &str, targets: &[Target]) -> Result<(), BackendError> {
        for chunk in targets.chunks(KEYS_PER_RUN) {
            // `-q` makes ipfw(8) update existing keys instead of failing;
            // each key gets an explicit value so keys and values never
            // pair up wrongly.
            let mut args = table_argv(name, &["atomic", "add"]);
            for t in chunk {
                args.push(t.to_string());
                args.push("0".into());
            }
            self.run(args)?;
        }
        Ok(())
    }

    fn del(&self, name: &str, targets: &[Target]) -> Result<(), BackendError> {
        // ipfw(8) fails a delete of an absent key; send only present ones.
        let present: std::collections::HashSet<Target> = self.list(name)?.into_iter().collect();
        let wanted: Vec<&Target> = targets.iter().filter(|t| present.contains(t)).collect();
        for chunk in wanted.chunks(KEYS_PER_RUN) {
            let mut args = table_argv(name, &["delete"]);
            args.extend(chunk.iter().map(|t| t.to_string()));
            self.run(args)?;
        }
        Ok(())
    }

    fn list(&self, name: &str) -> Result<Vec<Target>, BackendError> {
        let args = vec!["table".to_string(), name.into(), "list".into()];
        let out = self.run(args.clone())?;
        parse_table_list(&out)
            .map_err(|why| BackendError::new(ErrorKind::Other, rule::shown(&args), why.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_listings_parse() {
        let out =
            "--- table(f2b), set(0) ---\n192.0.2.1/32 0\n198.51.100.0/24 0\n2001:db8::/64 0\n";
        let got = parse_table_list(out).unwrap();
        let want: Vec<Target> = ["192.0.2.1", "198.51.100.0/24", "2001:db8::/64"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(got, want);
        let bogus = parse_table_list("--- table(x) ---\nbogus 0\n").unwrap_err();
        assert_eq!(bogus.line, "bogus 0");
        assert!(bogus.to_string().contains("bogus"));
    }

    #[test]
    fn errnos_map_by_number() {
        assert_eq!(ipfw_error(ESRCH, "x").kind(), ErrorKind::NotFound);
        assert_eq!(ipfw_error(EFBIG, "x").kind(), ErrorKind::SetFull);
        assert_eq!(ipfw_error(EACCES, "x").kind(), ErrorKind::Permission);
        assert!(ipfw_error(EBUSY, "x").detail().contains("ipfw list"));
    }
}
