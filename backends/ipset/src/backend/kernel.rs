//! The kernel requests, one function each: create, look up, list, test,
//! add or delete entries, destroy or flush; and whether an existing set
//! can serve.

use banset_core::errno::{EEXIST, ENOENT};
use banset_core::{BackendError, ErrorKind, SetSpec};

use super::errors::{encode_error, entry_error, sys_error};
use crate::layout::{self, KernelSet};
use crate::msg::replies::{self, ListedEntry, SetHeader};
use crate::msg::requests::{self, CreateParams, Entry};
use crate::msg::{cmd, errcode, IpsetMessage, MAX_SET_NAME};
use crate::sys::{Socket, SysError};

/// DESTROY that is fine with an absent set.
pub(super) fn drop_set(
    sock: &mut Socket,
    set: &KernelSet,
    name: &str,
    what: &str,
) -> Result<(), BackendError> {
    match simple(sock, cmd::DESTROY, set, name) {
        Ok(()) | Err(SysError::Kernel { errno: ENOENT, .. }) => Ok(()),
        Err(e) => Err(sys_error(
            e,
            &format!("{what}: destroy temporary set {name}"),
        )),
    }
}

/// ADD or DEL of `entries` in messages of up to 64 KiB, one request each,
/// stopping at the first failure.
pub(super) fn send_entries(
    sock: &mut Socket,
    command: u8,
    set: &KernelSet,
    name: &str,
    entries: &[Entry],
    h: &SetHeader,
) -> Result<(), BackendError> {
    let verb = if command == cmd::ADD {
        "add to"
    } else {
        "delete from"
    };
    let mut start = 0;
    while start < entries.len() {
        let n = requests::entries_per_message(&entries[start..]);
        let chunk = &entries[start..start + n];
        let seq = sock.next_seq();
        let what = format!("{verb} ipset {name}");
        let req = requests::adt(command, seq, set.nfproto(), name, chunk, start as u32 + 1)
            .map_err(|e| encode_error(e, &what))?;
        if let Err(e) = sock.request(&req, seq, &mut |_| Ok(())) {
            // Without a header looked up in advance, the full set's
            // maxelem is looked up now, for the message.
            let looked_up;
            let h = match e {
                SysError::Kernel {
                    errno: errcode::HASH_FULL,
                    ..
                } if h.maxelem.is_none() => {
                    looked_up = header(sock, set).ok().flatten().unwrap_or_default();
                    &looked_up
                }
                _ => h,
            };
            return Err(entry_error(e, set, name, verb, entries, start, h));
        }
        start += n;
    }
    Ok(())
}

/// TEST: true when the entry matches, false on `IPSET_ERR_EXIST`.
pub(super) fn test(sock: &mut Socket, set: &KernelSet, entry: Entry) -> Result<bool, BackendError> {
    let what = format!("test {} in {}", entry.addr, set.describe());
    let seq = sock.next_seq();
    let req = requests::test(seq, &set.name, &entry).map_err(|e| encode_error(e, &what))?;
    match sock.request(&req, seq, &mut |_| Ok(())) {
        Ok(()) => Ok(true),
        Err(SysError::Kernel {
            errno: errcode::EXIST,
            ..
        }) => Ok(false),
        Err(SysError::Kernel { errno: ENOENT, .. }) => Err(missing(set)),
        Err(e) => Err(sys_error(e, &what)),
    }
}

/// A request naming one set and nothing else (DESTROY, FLUSH).
pub(super) fn simple(
    sock: &mut Socket,
    command: u8,
    set: &KernelSet,
    name: &str,
) -> Result<(), SysError> {
    let seq = sock.next_seq();
    let req = requests::on_set(command, seq, set.nfproto(), name)
        .map_err(|e| SysError::Decode(crate::msg::DecodeError(e.to_string())))?;
    sock.request(&req, seq, &mut |_| Ok(()))
}

/// The set's header, `None` when it does not exist.
pub(super) fn header(
    sock: &mut Socket,
    set: &KernelSet,
) -> Result<Option<SetHeader>, BackendError> {
    let what = format!("look up {}", set.describe());
    let seq = sock.next_seq();
    let req =
        requests::list(seq, set.nfproto(), &set.name, true).map_err(|e| encode_error(e, &what))?;
    let mut ignored = Vec::new();
    match sock.dump(&req, seq, &mut |head: &mut Option<SetHeader>, msg| {
        if msg.ipset_cmd() == Some(cmd::LIST) {
            replies::parse_list_part(msg, head, &mut ignored)?;
        }
        Ok(())
    }) {
        Ok(head) => Ok(head.filter(|h| h.name == set.name)),
        Err(SysError::Kernel { errno: ENOENT, .. }) => Ok(None),
        Err(e) => Err(sys_error(e, &what)),
    }
}

/// The header and entries of a set; `NotFound` when it does not exist.
pub(super) fn dump(
    sock: &mut Socket,
    set: &KernelSet,
) -> Result<(SetHeader, Vec<ListedEntry>), BackendError> {
    let what = format!("list {}", set.describe());
    let seq = sock.next_seq();
    let req =
        requests::list(seq, set.nfproto(), &set.name, false).map_err(|e| encode_error(e, &what))?;
    type Listing = (Option<SetHeader>, Vec<ListedEntry>);
    let (head, entries) = match sock.dump(&req, seq, &mut |acc: &mut Listing, msg| {
        if msg.ipset_cmd() == Some(cmd::LIST) {
            let name = replies::parse_list_part(msg, &mut acc.0, &mut acc.1)?;
            if name != set.name {
                return Err(crate::msg::DecodeError(format!(
                    "asked for set {}, the kernel listed {name}",
                    set.name
                )));
            }
        }
        Ok(())
    }) {
        Ok(listing) => listing,
        Err(SysError::Kernel { errno: ENOENT, .. }) => return Err(missing(set)),
        Err(e) => return Err(sys_error(e, &what)),
    };
    let head = head.ok_or_else(|| {
        BackendError::new(ErrorKind::Other, &what, "the kernel listed no set header")
    })?;
    Ok((head, entries))
}

/// CREATE `name` with the parameters of `set` and `spec`. The revision is
/// the kernel's newest for the type unless given (a swap partner must match
/// the live set's).
pub(super) fn create(
    sock: &mut Socket,
    set: &KernelSet,
    name: &str,
    spec: &SetSpec,
    revision: Option<u8>,
) -> Result<(), BackendError> {
    let what = format!(
        "create ipset {name} ({}, {})",
        set.typename,
        layout::family_name(set.family)
    );
    if name.len() > MAX_SET_NAME {
        return Err(BackendError::new(
            ErrorKind::Invalid,
            what,
            format!("ipset names are at most {MAX_SET_NAME} bytes"),
        ));
    }
    let revision = match revision {
        Some(r) => r,
        None => {
            let seq = sock.next_seq();
            let req = requests::type_query(seq, set.typename, set.nfproto())
                .map_err(|e| encode_error(e, &what))?;
            let mut revs = None;
            sock.request(&req, seq, &mut |msg| {
                if msg.ipset_cmd() == Some(cmd::TYPE) {
                    revs = Some(replies::parse_type(msg)?);
                }
                Ok(())
            })
            .map_err(|e| sys_error(e, &format!("{what}: query the type's revision")))?;
            revs.map(|(max, _)| max).ok_or_else(|| {
                BackendError::new(
                    ErrorKind::Unsupported,
                    &what,
                    "the kernel does not know the set type",
                )
            })?
        }
    };
    let maxelem = layout::maxelem(spec);
    let params = CreateParams {
        name,
        typename: set.typename,
        revision,
        family: set.nfproto(),
        timeout: layout::default_timeout(spec),
        hashsize: layout::hash_size(maxelem),
        maxelem,
    };
    let seq = sock.next_seq();
    let req = requests::create(seq, &params).map_err(|e| encode_error(e, &what))?;
    match sock.request(&req, seq, &mut |_| Ok(())) {
        Ok(()) => Ok(()),
        // Created concurrently with other parameters.
        Err(SysError::Kernel { errno: EEXIST, .. }) => Err(BackendError::new(
            ErrorKind::Exists,
            what,
            format!(
                "a set of that name exists with other parameters; run `banset destroy {}` first",
                spec.name
            ),
        )),
        Err(e) => Err(sys_error(e, &what)),
    }
}

/// Whether an existing set can serve `set`: same type and family, with
/// timeout support. Other parameters (default timeout, maxelem) may differ:
/// entries always carry their own timeout, and a different maxelem is the
/// admin's choice, reported when the set fills up.
pub(super) fn reusable(set: &KernelSet, h: &SetHeader, spec: &SetSpec) -> Result<(), BackendError> {
    let family = match h.family {
        crate::msg::NFPROTO_IPV4 => "inet",
        crate::msg::NFPROTO_IPV6 => "inet6",
        _ => "unknown",
    };
    if h.family != set.nfproto() {
        // Not a stale set of ours: banset names a set's IPv6 ipset NAME6, so
        // the IPv4 ipset of set `x6` is the name set `x` needs for IPv6 (and
        // the other way round). `banset destroy` would remove the other
        // set's kernel object, so it is not the advice.
        return Err(BackendError::new(
            ErrorKind::Exists,
            format!("ipset {}", set.name),
            format!(
                "a set of that name exists for family {family}, and set {} needs it for {}: it \
                 belongs to another set (the IPv6 ipset of a banset set NAME is NAME6, so sets \
                 `x` and `x6` clash); choose another name for set {}",
                spec.name,
                layout::family_name(set.family),
                spec.name
            ),
        ));
    }
    let problem = if h.typename != set.typename {
        format!(
            "it is {} family {family}, banset needs {} family {}",
            h.typename,
            set.typename,
            layout::family_name(set.family)
        )
    } else if h.timeout.is_none() {
        "it was created without timeout support".to_string()
    } else {
        return Ok(());
    };
    Err(BackendError::new(
        ErrorKind::Exists,
        format!("ipset {}", set.name),
        format!(
            "a set of that name exists but {problem}; run `banset destroy {}` first (or `ipset destroy {}` if it is not banset's)",
            spec.name, set.name
        ),
    ))
}

pub(super) fn missing(set: &KernelSet) -> BackendError {
    BackendError::new(
        ErrorKind::NotFound,
        format!("ipset {}", set.name),
        "the set does not exist",
    )
}
