//! Turns `create`'s options (also accepted by `add` for a new set) into a
//! validated [`SetSpec`], and applies them to an existing set's spec for
//! `banset set-options`.

use anyhow::Result;
use banset_core::{
    BackendKind, BlockType, Families, Hook, PortRange, Protocol, SetName, SetPolicy, SetSpec,
    Timeout, DEFAULT_MAX_ELEMENTS, DEFAULT_SET_TIMEOUT,
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
    let policy = parse_policy(opts)?.unwrap_or_default();
    let spec = SetSpec {
        name,
        backend,
        families,
        timeout: timeout.unwrap_or_else(|| {
            policy.default_timeout(config.defaults.timeout.unwrap_or(DEFAULT_SET_TIMEOUT))
        }),
        prefixes: !opts.no_prefixes,
        max_elements: Some(max_elements),
        hook,
        policy,
    };
    if let Err(e) = spec.check_policy() {
        usage!("set {}: {e}", spec.name);
    }
    Ok(spec)
}

/// `--policy` or `--allow-only`, when given.
fn parse_policy(opts: &SetOptions) -> Result<Option<SetPolicy>> {
    if opts.allow_only {
        return Ok(Some(SetPolicy::AllowOnly));
    }
    Ok(match &opts.policy {
        Some(p) => match p.parse::<SetPolicy>() {
            Ok(p) => Some(p),
            Err(e) => usage!("{e}"),
        },
        None => None,
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
    let ports = parse_ports(opts)?.unwrap_or_default();
    let protocol = parse_protocol(opts, &ports, None)?;
    Ok(Hook {
        ports,
        protocol,
        block: parse_block(opts)?.unwrap_or(BlockType::Drop),
        permanent: opts.permanent,
    })
}

/// `--ports`, when given (empty: every port).
fn parse_ports(opts: &SetOptions) -> Result<Option<Vec<PortRange>>> {
    Ok(match &opts.ports {
        Some(p) if covers_every_port(p) => Some(Vec::new()),
        Some(p) => match PortRange::parse_list(p) {
            Ok(p) => Some(p),
            Err(e) => usage!("{e}"),
        },
        None => None,
    })
}

/// `--protocol`, or what it is without one: `kept` (a set's own) or, for
/// ports, TCP (fail2ban's default: ports mean TCP ports).
fn parse_protocol(
    opts: &SetOptions,
    ports: &[PortRange],
    kept: Option<Protocol>,
) -> Result<Option<Protocol>> {
    Ok(match opts.protocol.as_deref() {
        Some("tcp") => Some(Protocol::Tcp),
        Some("udp") => Some(Protocol::Udp),
        Some("all") if !ports.is_empty() => {
            usage!("--protocol all cannot go with --ports: ports belong to tcp or udp")
        }
        Some("all") => None,
        Some(other) => usage!("invalid --protocol {other:?} (use tcp, udp or all)"),
        None if kept.is_some() => kept,
        None if !ports.is_empty() => Some(Protocol::Tcp),
        None => None,
    })
}

/// `--blocktype`, when given.
fn parse_block(opts: &SetOptions) -> Result<Option<BlockType>> {
    Ok(match &opts.blocktype {
        Some(b) => match iptables_target(b).parse::<BlockType>() {
            Ok(b) => Some(b),
            Err(e) => usage!("{e}"),
        },
        None => None,
    })
}

/// `existing` with the options given on the command line applied, and
/// nothing else: what `banset set-options` asks for, and what `add` checks
/// its options against. An option not given keeps the set's value.
pub fn changed_spec(
    existing: &SetSpec,
    opts: &SetOptions,
    timeout: Option<Timeout>,
    dry_run: bool,
) -> Result<SetSpec> {
    let mut spec = existing.clone();
    if let Some(text) = &opts.backend {
        spec.backend = parse_backend(text, "--backend", dry_run)?;
    }
    if let Some(f) = &opts.family {
        spec.families = match f.parse::<Families>() {
            Ok(f) => f,
            Err(e) => usage!("{e}"),
        };
    }
    match opts.maxelem {
        Some(0) => usage!("invalid --maxelem 0: a set must hold at least one member"),
        Some(n) => spec.max_elements = Some(n),
        None => {}
    }
    if opts.prefixes || opts.no_prefixes {
        spec.prefixes = opts.prefixes;
    }
    if let Some(t) = timeout {
        spec.timeout = t;
    }
    // Never in place (`SpecChange` refuses it), but asked for, it is part of
    // the wanted spec so the refusal says why.
    if let Some(policy) = parse_policy(opts)? {
        spec.policy = policy;
    }
    let rule_options = opts.ports.is_some()
        || opts.protocol.is_some()
        || opts.blocktype.is_some()
        || opts.permanent;
    if opts.no_hook {
        if rule_options {
            usage!(
                "--no-hook takes the rule away, so --ports, --protocol, --blocktype and --permanent do not apply"
            );
        }
        spec.hook = None;
    } else if rule_options {
        let mut hook = existing.hook.clone().unwrap_or_default();
        if let Some(ports) = parse_ports(opts)? {
            hook.ports = ports;
        }
        hook.protocol = parse_protocol(opts, &hook.ports, hook.protocol)?;
        if let Some(block) = parse_block(opts)? {
            hook.block = block;
        }
        hook.permanent |= opts.permanent;
        spec.hook = Some(hook);
    }
    if let Err(e) = spec.check_policy() {
        usage!("set {}: {e}", spec.name);
    }
    if opts.permanent && spec.backend != BackendKind::Firewalld {
        usage!(
            "--permanent saves the rule in firewalld's configuration, but set {} is on the {} backend",
            spec.name,
            spec.backend
        );
    }
    Ok(spec)
}

/// The command-line options that make `existing` into `wanted`, for a hint
/// (`--ports 22 --blocktype reject`); only the rule and maxelem, which can
/// change in place.
pub fn options_for(existing: &SetSpec, wanted: &SetSpec) -> String {
    let mut out = Vec::new();
    if existing.max_elements != wanted.max_elements {
        if let Some(m) = wanted.max_elements {
            out.push(format!("--maxelem {m}"));
        }
    }
    match (&existing.hook, &wanted.hook) {
        (_, None) if existing.hook.is_some() => out.push("--no-hook".into()),
        (old, Some(h)) => {
            let old = old.clone().unwrap_or_default();
            if old.ports != h.ports || existing.hook.is_none() {
                let ports: Vec<String> = h.ports.iter().map(ToString::to_string).collect();
                out.push(format!(
                    "--ports {}",
                    if ports.is_empty() {
                        "1-65535".to_string()
                    } else {
                        ports.join(",")
                    }
                ));
            }
            if old.protocol != h.protocol {
                out.push(format!(
                    "--protocol {}",
                    h.protocol.map_or("all", |p| p.name())
                ));
            }
            if old.block != h.block {
                out.push(format!(
                    "--blocktype {}",
                    match h.block {
                        BlockType::Drop => "drop",
                        BlockType::Reject => "reject",
                    }
                ));
            }
        }
        _ => {}
    }
    out.join(" ")
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
