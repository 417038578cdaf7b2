//! `SetSpec`: everything banset needs to know to (re)create a ban set the
//! same way every time: after a reboot, a firewall reload, or on another
//! backend. It is stored in the ledger, so `sync` can rebuild a set that was
//! wiped without the admin repeating the `create` options.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::policy::{PolicyHookError, SetPolicy};
use crate::set_name::SetName;
use crate::target::{Family, Target};
use crate::timeout::Timeout;

/// Which firewall holds a set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum BackendKind {
    /// Linux nf_tables, over netlink (crate `banset-nftables`).
    Nftables,
    /// Linux ipset with an iptables/ip6tables hook rule, over netlink (crate
    /// `banset-ipset`).
    Ipset,
    /// firewalld (Linux). Reserved: no backend of this kind is implemented yet.
    Firewalld,
    /// pf tables (FreeBSD). Reserved: no backend of this kind is implemented
    /// yet.
    Pf,
    /// ipfw tables (FreeBSD). Reserved: no backend of this kind is implemented
    /// yet.
    Ipfw,
    /// In-process, for `--dry-run` and tests; forgets everything on exit.
    Memory,
}

impl BackendKind {
    /// Every kind, including those no backend implements yet.
    pub const ALL: [BackendKind; 6] = [
        BackendKind::Nftables,
        BackendKind::Ipset,
        BackendKind::Firewalld,
        BackendKind::Pf,
        BackendKind::Ipfw,
        BackendKind::Memory,
    ];

    /// The lowercase name used on the command line, in configuration and in
    /// the ledger (`nftables`, `memory`, ...); `FromStr` accepts exactly these.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Nftables => "nftables",
            BackendKind::Ipset => "ipset",
            BackendKind::Firewalld => "firewalld",
            BackendKind::Pf => "pf",
            BackendKind::Ipfw => "ipfw",
            BackendKind::Memory => "memory",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of an option's values (`--backend`, `--family`,
/// `--blocktype`), with the values it could have been.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {option} {given:?} ({choices})")]
pub struct UnknownName {
    /// What was being named: `backend`, `family`, `block type`.
    pub option: &'static str,
    /// What was given.
    pub given: String,
    /// The values there are, as a hint.
    pub choices: &'static str,
}

impl UnknownName {
    fn new(option: &'static str, given: &str, choices: &'static str) -> UnknownName {
        UnknownName {
            option,
            given: given.to_string(),
            choices,
        }
    }
}

impl std::str::FromStr for BackendKind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BackendKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                UnknownName::new(
                    "backend",
                    s,
                    "known: nftables, ipset, firewalld, pf, ipfw, memory",
                )
            })
    }
}

/// The address families a logical set holds. One logical name covers both
/// by default, so an admin never has to think about v4 vs v6 twins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Families {
    /// IPv4 only (ipset's `family inet`).
    Inet,
    /// IPv6 only.
    Inet6,
    /// IPv4 and IPv6: the default.
    Both,
}

impl Families {
    /// Whether the set holds addresses of `family`.
    pub fn includes(self, family: Family) -> bool {
        matches!(
            (self, family),
            (Families::Both, _) | (Families::Inet, Family::V4) | (Families::Inet6, Family::V6)
        )
    }

    /// The families in a fixed order (v4 first).
    pub fn list(self) -> &'static [Family] {
        match self {
            Families::Inet => &[Family::V4],
            Families::Inet6 => &[Family::V6],
            Families::Both => &[Family::V4, Family::V6],
        }
    }

    /// The name used in configuration and messages: `inet`, `inet6` or `both`.
    /// `FromStr` also accepts `ipv4`/`v4`, `ipv6`/`v6` and `any`.
    pub fn name(self) -> &'static str {
        match self {
            Families::Inet => "inet",
            Families::Inet6 => "inet6",
            Families::Both => "both",
        }
    }
}

impl std::str::FromStr for Families {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "inet" | "ipv4" | "v4" => Ok(Families::Inet),
            "inet6" | "ipv6" | "v6" => Ok(Families::Inet6),
            "both" | "any" => Ok(Families::Both),
            _ => Err(UnknownName::new("family", s, "use inet, inet6 or both")),
        }
    }
}

/// The transport protocol a [`Hook`] restricts its blocking rule to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP (IP protocol 6).
    Tcp,
    /// UDP (IP protocol 17).
    Udp,
}

impl Protocol {
    /// The lowercase name (`tcp`, `udp`).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }

    /// The IP protocol number (`IPPROTO_TCP`, `IPPROTO_UDP`).
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }
}

/// What the blocking rule does with a banned source's packets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockType {
    /// Silently discard: what our users configure (fail2ban's DROP).
    #[default]
    Drop,
    /// Answer with ICMP port unreachable.
    Reject,
}

impl std::str::FromStr for BlockType {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "drop" => Ok(BlockType::Drop),
            "reject" => Ok(BlockType::Reject),
            _ => Err(UnknownName::new("block type", s, "use drop or reject")),
        }
    }
}

/// An inclusive destination port range; a single port has `first == last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortRange {
    /// The first port, at least 1.
    pub first: u16,
    /// The last port, inclusive; never below `first`.
    pub last: u16,
}

/// How many ports a hook may list once ranges are expanded. Kernel rule
/// encodings that take a port set (nftables) expand ranges; this bound keeps
/// a typo like `1-65535` from turning into a 64k-element rule.
pub const MAX_HOOK_PORTS: usize = 4096;

impl PortRange {
    /// Number of ports in the range.
    ///
    /// Assumes `first <= last`, which [`PortRange::parse_list`] guarantees; the
    /// fields are public, so a hand-built backwards range breaks it.
    pub fn len(&self) -> usize {
        usize::from(self.last.saturating_sub(self.first)) + 1
    }

    /// Always `false`: a range holds at least one port. Present for clippy's
    /// `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Parses fail2ban-style port lists: `25,465,587`, `6000-6010`, `6000:6010`,
    /// and the service names our users' jails use (`smtp`, `submission`, ...).
    pub fn parse_list(input: &str) -> Result<Vec<PortRange>, PortListError> {
        let invalid = |why| PortListError {
            list: input.to_string(),
            why,
        };
        let mut out = Vec::new();
        for item in input.split(',') {
            let item = item.trim();
            if item.is_empty() {
                return Err(invalid(PortListProblem::EmptyItem));
            }
            // One port (or a name, which may hold a dash: `ftp-data`), else
            // a range.
            let range = match (parse_port(item), item.split_once(['-', ':'])) {
                (Ok(p), _) => PortRange { first: p, last: p },
                (Err(_), Some((a, b))) => PortRange {
                    first: parse_port(a).map_err(invalid)?,
                    last: parse_port(b).map_err(invalid)?,
                },
                (Err(e), None) => return Err(invalid(e)),
            };
            if range.first > range.last {
                return Err(invalid(PortListProblem::Backwards(item.to_string())));
            }
            out.push(range);
        }
        out.sort();
        out.dedup();
        let total: usize = out.iter().map(PortRange::len).sum();
        if total > MAX_HOOK_PORTS {
            return Err(invalid(PortListProblem::TooMany(total)));
        }
        Ok(out)
    }
}

impl PortRange {
    /// The range in a firewall's syntax: the port alone, or `first`, `sep`,
    /// `last` (`25:587` for iptables' multiport and pf, whose `a:b` is the
    /// inclusive range; `25-587` for ipfw and banset itself).
    pub fn written_with(&self, sep: char) -> String {
        if self.first == self.last {
            self.first.to_string()
        } else {
            format!("{}{sep}{}", self.first, self.last)
        }
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written_with('-'))
    }
}

/// Service names that fail2ban's stock jails use (every name in the
/// `port =` lines of fail2ban 1.0.2's jail.conf), looked up here rather than
/// in /etc/services so those rules mean the same on every host, including
/// hosts whose /etc/services lacks some (Debian's has no `ssmtp` or
/// `ftp-data`). Other names are looked up in /etc/services.
const SERVICES: &[(&str, u16)] = &[
    ("ftp-data", 20),
    ("ssmtp", 465),
    ("ldap", 389),
    ("ldaps", 636),
    ("socks", 1080),
    ("ftps-data", 989),
    ("ftps", 990),
    ("ssh", 22),
    ("smtp", 25),
    ("http", 80),
    ("pop3", 110),
    ("imap", 143),
    ("imap2", 143),
    ("imap3", 220),
    ("https", 443),
    ("smtps", 465),
    ("submissions", 465),
    ("submission", 587),
    ("imaps", 993),
    ("pop3s", 995),
    ("ftp", 21),
    ("domain", 53),
    ("sieve", 4190),
];

/// The port of a service name in /etc/services (tcp or udp, name or
/// alias), read once.
fn system_service(name: &str) -> Option<u16> {
    static TABLE: std::sync::OnceLock<Vec<(String, u16)>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let text = std::fs::read_to_string("/etc/services").unwrap_or_default();
        parse_services(&text)
    });
    table.iter().find(|(n, _)| n == name).map(|(_, p)| *p)
}

/// `name port/proto [aliases...] [# comment]` lines.
fn parse_services(text: &str) -> Vec<(String, u16)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let (Some(name), Some(port)) = (words.next(), words.next()) else {
            continue;
        };
        let Some(port) = port
            .split_once('/')
            .and_then(|(p, _)| p.parse::<u16>().ok())
            .filter(|&p| p > 0)
        else {
            continue;
        };
        for n in std::iter::once(name).chain(words) {
            out.push((n.to_string(), port));
        }
    }
    out
}

/// A port list ([`PortRange::parse_list`]) that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid port list {list:?}: {why}")]
pub struct PortListError {
    /// The list as written.
    pub list: String,
    /// What is wrong with it.
    pub why: PortListProblem,
}

/// What is wrong with a port list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PortListProblem {
    /// `25,,465`.
    #[error("empty item")]
    EmptyItem,
    /// Neither a number in 1-65535 nor a service name known here.
    #[error("{0:?} is not a port (1-65535) or a known service name")]
    NotAPort(String),
    /// `6010-6000`.
    #[error("range {0:?} is backwards")]
    Backwards(String),
    /// More ports than a hook rule takes.
    #[error("{0} ports, at most {MAX_HOOK_PORTS} (leave ports out to block all ports)")]
    TooMany(usize),
}

fn parse_port(text: &str) -> Result<u16, PortListProblem> {
    let text = text.trim();
    if let Some((_, port)) = SERVICES.iter().find(|(name, _)| *name == text) {
        return Ok(*port);
    }
    let is_name = text.bytes().next().is_some_and(|b| b.is_ascii_alphabetic());
    if let Some(port) = is_name.then(|| system_service(text)).flatten() {
        return Ok(port);
    }
    match text.parse::<u16>() {
        Ok(p) if p > 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
        _ => Err(PortListProblem::NotAPort(text.to_string())),
    }
}

/// The blocking rule that makes a set's members lose their traffic.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hook {
    /// Destination ports; empty means every port.
    #[serde(default)]
    pub ports: Vec<PortRange>,
    /// `None` means every protocol. Ports imply TCP unless told otherwise.
    #[serde(default)]
    pub protocol: Option<Protocol>,
    /// What happens to a matching packet (default: drop).
    #[serde(default)]
    pub block: BlockType,
    /// Also write the rule into the firewall service's saved configuration,
    /// so it is back after the service restarts or the machine reboots
    /// (firewalld's `--permanent`). Backends without such a configuration
    /// (nftables, ipset) do not take it. Left out of the stored spec when
    /// false, so specs stored before it existed still compare equal.
    #[serde(default, skip_serializing_if = "is_false")]
    pub permanent: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A logical ban set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetSpec {
    /// The set's name, also its ledger key.
    pub name: SetName,
    /// Which firewall holds the set; fixed once the set exists.
    pub backend: BackendKind,
    /// Which address families the set holds.
    pub families: Families,
    /// Applied to bans added without `--timeout`.
    pub timeout: Timeout,
    /// Whether prefixes (CIDR) may be banned, not only single addresses.
    pub prefixes: bool,
    /// Upper bound on members (ipset's `maxelem`, nftables' `size`); past it
    /// an add fails with [`ErrorKind::SetFull`](crate::ErrorKind::SetFull).
    /// `None`: no bound beyond the kernel's own.
    pub max_elements: Option<u32>,
    /// The blocking rule; `None` when the admin hooks the set up himself.
    pub hook: Option<Hook>,
    /// What members mean to the hook: banned (the default) or the only
    /// sources allowed ([`SetPolicy`]). Left out of the stored spec when
    /// `ban`, so specs stored before it existed still compare equal.
    #[serde(default, skip_serializing_if = "SetPolicy::is_ban")]
    pub policy: SetPolicy,
}

/// A set's default timeout when nobody chose one: a day is long enough to
/// stop a brute-force run and short enough that a mistaken ban heals itself.
pub const DEFAULT_SET_TIMEOUT: Timeout = Timeout::Secs(86_400);

/// Default `max_elements`: far above ipset's 65,536, which real attacks fill
/// (fail2ban/fail2ban#3549).
pub const DEFAULT_MAX_ELEMENTS: u32 = 1 << 20;

impl SetSpec {
    /// The defaults `banset add` uses when it creates a set on the fly: both
    /// families, prefixes allowed, drop on every port.
    pub fn new(name: SetName, backend: BackendKind) -> SetSpec {
        SetSpec {
            name,
            backend,
            families: Families::Both,
            timeout: DEFAULT_SET_TIMEOUT,
            prefixes: true,
            max_elements: Some(DEFAULT_MAX_ELEMENTS),
            hook: Some(Hook::default()),
            policy: SetPolicy::Ban,
        }
    }

    /// Whether the hook can carry the policy's rule: an allow-only rule
    /// needs ports. Checked wherever a spec is built from the admin's
    /// words (command line, banset.toml), before anything is made.
    pub fn check_policy(&self) -> Result<(), PolicyHookError> {
        match (self.policy, &self.hook) {
            (SetPolicy::AllowOnly, Some(h)) if h.ports.is_empty() => {
                Err(PolicyHookError::EveryPort)
            }
            _ => Ok(()),
        }
    }

    /// Whether `target` may go into this set; the error says why not.
    pub fn admits(&self, target: &Target) -> Result<(), Inadmissible> {
        if !self.families.includes(target.family()) {
            return Err(Inadmissible::Family {
                target: *target,
                set: self.name.clone(),
                held: match self.families {
                    Families::Inet => "IPv4",
                    _ => "IPv6",
                },
            });
        }
        if !target.is_host() && !self.prefixes {
            return Err(Inadmissible::Prefix {
                target: *target,
                set: self.name.clone(),
            });
        }
        Ok(())
    }
}

/// Why a target may not go into a set ([`SetSpec::admits`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Inadmissible {
    /// The set holds the other address family only.
    #[error("{target} is {} but set {set} holds only {held} addresses", target.family())]
    Family {
        /// The target refused.
        target: Target,
        /// The set.
        set: SetName,
        /// `IPv4` or `IPv6`: the family the set holds.
        held: &'static str,
    },
    /// A prefix, for a set created for single addresses.
    #[error("{target} is a prefix but set {set} was created without --prefixes")]
    Prefix {
        /// The target refused.
        target: Target,
        /// The set.
        set: SetName,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_option_value_is_a_typed_error_naming_the_choices() {
        let e = "nft".parse::<BackendKind>().unwrap_err();
        assert_eq!((e.option, e.given.as_str()), ("backend", "nft"));
        assert_eq!(
            e.to_string(),
            "unknown backend \"nft\" (known: nftables, ipset, firewalld, pf, ipfw, memory)"
        );
        assert_eq!("v5".parse::<Families>().unwrap_err().option, "family");
        let e = "deny".parse::<BlockType>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown block type \"deny\" (use drop or reject)"
        );
    }

    #[test]
    fn port_lists() {
        let p = PortRange::parse_list("smtp,465,submission,6000-6002").unwrap();
        let shown: Vec<String> = p.iter().map(|r| r.to_string()).collect();
        assert_eq!(shown, ["25", "465", "587", "6000-6002"]);
        for bad in ["", "0", "70000", "25,", "x", "10-5", "1-65535", "25;rm"] {
            assert!(PortRange::parse_list(bad).is_err(), "{bad}");
        }
        // Every service name of fail2ban's stock jails, whatever the host's
        // /etc/services holds.
        let p = PortRange::parse_list("ldap,ldaps,ssmtp,ftp-data,ftps,ftps-data,socks").unwrap();
        let shown: Vec<String> = p.iter().map(|r| r.to_string()).collect();
        assert_eq!(shown, ["20", "389", "465", "636", "989", "990", "1080"]);
    }

    #[test]
    fn services_file_names_and_aliases() {
        let t = parse_services(
            "# comment\nmysql\t\t3306/tcp\nsnmp 161/udp snmp-agent # x\nbroken\nzero 0/tcp\n",
        );
        assert_eq!(
            t,
            vec![
                ("mysql".to_string(), 3306),
                ("snmp".to_string(), 161),
                ("snmp-agent".to_string(), 161)
            ]
        );
    }

    #[test]
    fn admits_by_family_and_prefix() {
        let mut spec = SetSpec::new(SetName::new("s").unwrap(), BackendKind::Memory);
        spec.families = Families::Inet;
        spec.prefixes = false;
        let v6 = Target::parse("2001:db8::1").unwrap();
        let e = spec.admits(&v6).unwrap_err().to_string();
        assert!(e.contains("2001:db8::1") && e.contains("only IPv4"), "{e}");
        let net = Target::parse("10.0.0.0/8").unwrap();
        assert!(spec
            .admits(&net)
            .unwrap_err()
            .to_string()
            .contains("--prefixes"));
        assert!(spec.admits(&Target::parse("1.2.3.4").unwrap()).is_ok());
    }

    #[test]
    fn spec_round_trips_through_json() {
        let mut spec = SetSpec::new(SetName::new("f2b-postfix").unwrap(), BackendKind::Nftables);
        spec.hook = Some(Hook {
            ports: PortRange::parse_list("25,465,587").unwrap(),
            protocol: Some(Protocol::Tcp),
            block: BlockType::Reject,
            permanent: false,
        });
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<SetSpec>(&json).unwrap(), spec);
    }

    #[test]
    fn allow_only_needs_ports() {
        let mut spec = SetSpec::new(SetName::new("home").unwrap(), BackendKind::Memory);
        assert!(spec.check_policy().is_ok(), "a ban set on every port");
        spec.policy = SetPolicy::AllowOnly;
        assert_eq!(spec.check_policy(), Err(PolicyHookError::EveryPort));
        spec.hook.as_mut().unwrap().ports = PortRange::parse_list("22").unwrap();
        assert!(spec.check_policy().is_ok());
        spec.hook = None;
        assert!(spec.check_policy().is_ok(), "no rule, no ports needed");
    }
}
