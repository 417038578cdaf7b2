//! Turns `create`'s options (also accepted by `add` for a new set) into a
//! validated [`SetSpec`].

use anyhow::Result;
use banset_core::{
    BackendKind, BlockType, Families, Hook, PortRange, Protocol, SetName, SetSpec, Timeout,
    DEFAULT_MAX_ELEMENTS, DEFAULT_SET_TIMEOUT,
};

use crate::args::SetOptions;
use crate::config::Config;
use crate::context::{default_backend, AVAILABLE_BACKENDS};
use crate::errors::usage;

pub fn build_spec(
    name: SetName,
    opts: &SetOptions,
    timeout: Option<Timeout>,
    config: &Config,
) -> Result<SetSpec> {
    let backend = match opts
        .backend
        .as_deref()
        .or(config.defaults.backend.as_deref())
    {
        Some(text) => parse_backend(text)?,
        None => default_backend(),
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
        if opts.ports.is_some() || opts.protocol.is_some() || opts.blocktype.is_some() {
            usage!(
                "--no-hook creates no rule, so --ports, --protocol and --blocktype do not apply"
            );
        }
        None
    } else {
        Some(build_hook(opts)?)
    };
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

fn parse_backend(text: &str) -> Result<BackendKind> {
    let kind = match text.parse::<BackendKind>() {
        Ok(k) => k,
        Err(e) => usage!("{e}"),
    };
    if !AVAILABLE_BACKENDS.contains(&kind) {
        usage!(
            "backend {kind} is not available in this build of banset (available: nftables, ipset, memory)"
        );
    }
    Ok(kind)
}

fn build_hook(opts: &SetOptions) -> Result<Hook> {
    let ports = match &opts.ports {
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
        Some(b) => match b.parse::<BlockType>() {
            Ok(b) => b,
            Err(e) => usage!("{e}"),
        },
        None => BlockType::Drop,
    };
    Ok(Hook {
        ports,
        protocol,
        block,
    })
}
