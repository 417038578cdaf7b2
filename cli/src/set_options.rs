//! Turns `create`'s options (also accepted by `add` for a new set) into a
//! validated [`SetSpec`].

use anyhow::Result;
use banset_core::{
    BackendKind, BlockType, Families, Hook, PortRange, Protocol, SetName, SetSpec, Timeout,
    DEFAULT_MAX_ELEMENTS, DEFAULT_SET_TIMEOUT,
};

use crate::args::SetOptions;
use crate::config::Config;
use crate::errors::usage;
use banset_firewall::{available_backends, default_backend, detected_backend, AVAILABLE_BACKENDS};

/// `detect` says whether the set is new, so that, when neither `--backend`
/// nor the config chose, the backend may be detected (a D-Bus call); an
/// existing set keeps its stored backend and must not pay for it.
/// `dry_run` says whether the command runs with `--dry-run`, the one place
/// the memory backend is accepted.
pub fn build_spec(
    name: SetName,
    opts: &SetOptions,
    timeout: Option<Timeout>,
    config: &Config,
    detect: bool,
    dry_run: bool,
) -> Result<SetSpec> {
    let backend = match (opts.backend.as_deref(), config.defaults.backend.as_deref()) {
        (Some(text), _) => parse_backend(text, "--backend", dry_run)?,
        (None, Some(text)) => parse_backend(text, "defaults.backend", dry_run)?,
        (None, None) if detect => detected_backend(),
        (None, None) => default_backend(),
    };
    let families = match &opts.family {
        Some(f) => match f.parse::<Families>() {
            Ok(f) => f,
            Err(e) => usage!("{e}"),
        },
        None => Families::Both,
    };
    let max_elements = match opts.maxelem.or(config.defaults.maxelem) {
        Some(0) => usage!("invalid --maxelem 0: a set must hold at least one member"),
        Some(n) => n,
        None => DEFAULT_MAX_ELEMENTS,
    };
    let hook = if opts.no_hook {
        if opts.ports.is_some()
            || opts.protocol.is_some()
            || opts.blocktype.is_some()
            || opts.permanent
        {
            usage!(
                "--no-hook creates no rule, so --ports, --protocol, --blocktype and --permanent do not apply"
            );
        }
        None
    } else {
        Some(build_hook(opts)?)
    };
    if opts.permanent && backend != BackendKind::Firewalld {
        usage!(
            "--permanent saves the rule in firewalld's configuration, but set {name} would use the \
             {backend} backend; add --backend firewalld (is firewalld running?)"
        );
    }
    Ok(SetSpec {
        name,
        backend,
        families,
        timeout: timeout
            .or(config.defaults.timeout)
            .unwrap_or(DEFAULT_SET_TIMEOUT),
        prefixes: !opts.no_prefixes,
        max_elements: Some(max_elements),
        hook,
    })
}

/// `key` names where `text` came from, for the message.
fn parse_backend(text: &str, key: &str, dry_run: bool) -> Result<BackendKind> {
    let kind = match text.parse::<BackendKind>() {
        Ok(k) => k,
        Err(e) => usage!("{e}"),
    };
    // The memory backend is a kernel inside one banset process: a set on it
    // blocks nothing, and its bans vanish when the command exits, while the
    // ledger says they are in force. It exists for `--dry-run` (which puts
    // every set on it anyway) and for tests, which use it through the
    // library (banset-memory with the Engine) or with `--dry-run`; the CLI
    // tests run real kernels in a network namespace. So no switch turns it
    // on for real sets.
    if kind == BackendKind::Memory && !dry_run {
        usage!(
            "{key} memory: the memory backend keeps bans inside this one banset process and \
             never puts them in the kernel; use it with --dry-run, or choose one of: {}",
            available_backends()
        );
    }
    if !AVAILABLE_BACKENDS.contains(&kind) {
        usage!(
            "backend {kind} is not available in this build of banset (available: {})",
            available_backends()
        );
    }
    Ok(kind)
}

fn build_hook(opts: &SetOptions) -> Result<Hook> {
    let ports = match &opts.ports {
        Some(p) if covers_every_port(p) => Vec::new(),
        Some(p) => match PortRange::parse_list(p) {
            Ok(p) => p,
            Err(e) => usage!("{e}"),
        },
        None => Vec::new(),
    };
    let protocol = match opts.protocol.as_deref() {
        Some("tcp") => Some(Protocol::Tcp),
        Some("udp") => Some(Protocol::Udp),
        Some("all") if !ports.is_empty() => {
            usage!("--protocol all cannot go with --ports: ports belong to tcp or udp")
        }
        Some("all") => None,
        Some(other) => usage!("invalid --protocol {other:?} (use tcp, udp or all)"),
        // fail2ban's default: ports mean TCP ports
        None if !ports.is_empty() => Some(Protocol::Tcp),
        None => None,
    };
    let block = match &opts.blocktype {
        Some(b) => match iptables_target(b).parse::<BlockType>() {
            Ok(b) => b,
            Err(e) => usage!("{e}"),
        },
        None => BlockType::Drop,
    };
    Ok(Hook {
        ports,
        protocol,
        block,
        permanent: opts.permanent,
    })
}

/// fail2ban's jails write "every port" as a full range (`port = 0:65535` in
/// its `[DEFAULT]`). A range over every port is no port restriction, and is
/// the whole rule's job anyway; banset's port lists start at 1.
fn covers_every_port(list: &str) -> bool {
    matches!(list.trim(), "0:65535" | "0-65535" | "1:65535" | "1-65535")
}

/// fail2ban's iptables-style block types name the target and its options
/// (`REJECT --reject-with icmp-port-unreachable`); the target word is what
/// banset's rule needs. Anything after it is dropped only for REJECT, whose
/// rule answers with ICMP port unreachable.
fn iptables_target(blocktype: &str) -> &str {
    let trimmed = blocktype.trim();
    match trimmed.split_once(char::is_whitespace) {
        Some((word, rest))
            if word.eq_ignore_ascii_case("reject")
                && rest.trim_start().starts_with("--reject-with") =>
        {
            word
        }
        _ => trimmed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(ports: Option<&str>, protocol: Option<&str>, blocktype: Option<&str>) -> Result<Hook> {
        build_hook(&SetOptions {
            ports: ports.map(String::from),
            protocol: protocol.map(String::from),
            blocktype: blocktype.map(String::from),
            ..SetOptions::default()
        })
    }

    #[test]
    fn fail2bans_every_port_range_is_no_port_restriction() {
        for every in ["0:65535", "1-65535", " 0-65535 "] {
            let h = hook(Some(every), None, None).unwrap();
            assert!(h.ports.is_empty() && h.protocol.is_none(), "{every}: {h:?}");
        }
        let h = hook(Some("smtp,465,submission"), Some("tcp"), Some("DROP")).unwrap();
        assert_eq!(h.ports.len(), 3);
        assert_eq!(h.block, BlockType::Drop);
        assert!(hook(Some("0:1024"), None, None).is_err());
    }

    #[test]
    fn iptables_block_types_name_their_target() {
        for (given, want) in [
            ("DROP", BlockType::Drop),
            ("drop", BlockType::Drop),
            ("REJECT", BlockType::Reject),
            (
                "REJECT --reject-with icmp-port-unreachable",
                BlockType::Reject,
            ),
            (
                "reject --reject-with icmp6-port-unreachable",
                BlockType::Reject,
            ),
        ] {
            assert_eq!(
                hook(None, None, Some(given)).unwrap().block,
                want,
                "{given}"
            );
        }
        for bad in ["DROP --now", "LOG", "REJECT; rm -rf /", "ACCEPT"] {
            let e = hook(None, None, Some(bad)).unwrap_err().to_string();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }
}
