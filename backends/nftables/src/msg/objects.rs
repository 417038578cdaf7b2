//! Tables, chains, sets and rules: the batch messages that create and delete
//! them, the dump requests that list them, and the decoders of the replies.
//!
//! Attribute numbers are from `include/uapi/linux/netfilter/nf_tables.h`; the
//! order of attributes follows what `nft --debug=mnl` sends, which makes the
//! golden tests comparable with nft's own output.

use super::attrs::{be_u32, be_u64, c_str, Attrs};
use super::batch::{Batch, Op};
use super::{
    msg_type, nft_header, nlm_flags, write_message, DecodeError, EncodeError, NftMessage, NlMsg,
};

/// `NFTA_TABLE_*`.
mod table_attr {
    pub const NAME: u16 = 1;
}

/// `NFTA_CHAIN_*` and `NFTA_HOOK_*`.
mod chain_attr {
    pub const TABLE: u16 = 1;
    pub const NAME: u16 = 3;
    pub const HOOK: u16 = 4;
    pub const POLICY: u16 = 5;
    pub const TYPE: u16 = 7;
    pub const HOOK_HOOKNUM: u16 = 1;
    pub const HOOK_PRIORITY: u16 = 2;
}

/// `NFTA_SET_*`.
mod set_attr {
    pub const TABLE: u16 = 1;
    pub const NAME: u16 = 2;
    pub const FLAGS: u16 = 3;
    pub const KEY_TYPE: u16 = 4;
    pub const KEY_LEN: u16 = 5;
    pub const DESC: u16 = 9;
    pub const ID: u16 = 10;
    pub const TIMEOUT: u16 = 11;
}

/// `NFTA_SET_DESC_*`.
mod set_desc_attr {
    pub const SIZE: u16 = 1;
}

/// `NFTA_RULE_*`.
mod rule_attr {
    pub const TABLE: u16 = 1;
    pub const CHAIN: u16 = 2;
    pub const HANDLE: u16 = 3;
    pub const EXPRESSIONS: u16 = 4;
    pub const USERDATA: u16 = 7;
}

/// Expression attributes (`NFTA_EXPR_*`, `NFTA_META_*`, ...).
mod expr_attr {
    pub const LIST_ELEM: u16 = 1;
    pub const NAME: u16 = 1;
    pub const DATA: u16 = 2;

    pub const META_DREG: u16 = 1;
    pub const META_KEY: u16 = 2;
    pub const CMP_SREG: u16 = 1;
    pub const CMP_OP: u16 = 2;
    pub const CMP_DATA: u16 = 3;
    pub const PAYLOAD_DREG: u16 = 1;
    pub const PAYLOAD_BASE: u16 = 2;
    pub const PAYLOAD_OFFSET: u16 = 3;
    pub const PAYLOAD_LEN: u16 = 4;
    pub const LOOKUP_SET: u16 = 1;
    pub const LOOKUP_SREG: u16 = 2;
    pub const LOOKUP_SET_ID: u16 = 4;
    pub const LOOKUP_FLAGS: u16 = 5;
    pub const IMMEDIATE_DREG: u16 = 1;
    pub const IMMEDIATE_DATA: u16 = 2;
    pub const REJECT_TYPE: u16 = 1;
    pub const REJECT_ICMP_CODE: u16 = 2;

    /// `NFTA_DATA_*`, `NFTA_VERDICT_*`.
    pub const DATA_VALUE: u16 = 1;
    pub const DATA_VERDICT: u16 = 2;
    pub const VERDICT_CODE: u16 = 1;
}

/// `NFT_SET_*` flags.
pub mod set_flags {
    /// `NFT_SET_INTERVAL`: elements are ranges (banset's prefix sets).
    pub const INTERVAL: u32 = 0x4;
    /// `NFT_SET_TIMEOUT`: elements may carry a timeout and expire.
    pub const TIMEOUT: u32 = 0x10;
}

/// nft's datatype numbers for set keys (`enum datatypes` in nftables'
/// `datatype.h`). The kernel stores them opaquely; `nft list` uses them to
/// print the members.
pub mod key_type {
    /// `TYPE_IPADDR` (`ipv4_addr`).
    pub const IPV4_ADDR: u32 = 7;
    /// `TYPE_IP6ADDR` (`ipv6_addr`).
    pub const IPV6_ADDR: u32 = 8;
    /// `TYPE_INET_SERVICE` (`inet_service`: a port).
    pub const INET_SERVICE: u32 = 13;
}

/// `NF_INET_LOCAL_IN`.
pub const NF_INET_LOCAL_IN: u32 = 1;
/// `NF_ACCEPT`, as a chain policy.
pub const NF_ACCEPT: u32 = 1;
/// `NF_DROP`, as a verdict code.
pub const NF_DROP: u32 = 0;

const NFT_REG_VERDICT: u32 = 0;
const NFT_REG_1: u32 = 1;
const NFT_META_NFPROTO: u32 = 15;
const NFT_META_L4PROTO: u32 = 16;
const NFT_META_IIF: u32 = 4;
const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_NEQ: u32 = 1;
/// `NFT_LOOKUP_F_INV`: the lookup matches when the key is NOT in the set.
const NFT_LOOKUP_F_INV: u32 = 1;
/// The loopback interface's index, the same in every network namespace
/// (`LOOPBACK_IFINDEX`); `iif lo` is compiled to it by nft too.
const LOOPBACK_IFINDEX: u32 = 1;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
/// `NFT_REJECT_ICMPX_UNREACH`: the family-neutral reject of an `inet` table;
/// the kernel sends ICMP or ICMPv6 as fits the packet.
const NFT_REJECT_ICMPX_UNREACH: u32 = 2;
/// `NFT_REJECT_ICMPX_PORT_UNREACH`.
const NFT_REJECT_ICMPX_PORT_UNREACH: u8 = 1;
/// `NFTNL_UDATA_RULE_COMMENT`: the user-data TLV `nft` shows as `comment "..."`.
const UDATA_RULE_COMMENT: u8 = 0;

/// A base chain (`type filter hook input priority -10; policy accept;`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BaseChain<'a> {
    /// `NFTA_CHAIN_TABLE`.
    pub table: &'a str,
    /// `NFTA_CHAIN_NAME`.
    pub name: &'a str,
    /// `NFTA_HOOK_HOOKNUM`, e.g. [`NF_INET_LOCAL_IN`].
    pub hook: u32,
    /// `NFTA_HOOK_PRIORITY`: lower runs first.
    pub priority: i32,
    /// `NFTA_CHAIN_POLICY`, e.g. [`NF_ACCEPT`].
    pub policy: u32,
}

/// A named set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetDef<'a> {
    /// `NFTA_SET_TABLE`.
    pub table: &'a str,
    /// `NFTA_SET_NAME`.
    pub name: &'a str,
    /// `NFTA_SET_FLAGS`: [`set_flags`] bits. The kernel refuses to re-create
    /// an existing set with other flags (`EEXIST`).
    pub flags: u32,
    /// `NFTA_SET_KEY_TYPE`: a [`key_type`] number.
    pub key_type: u32,
    /// `NFTA_SET_KEY_LEN`: key size in bytes (4, 16, or 2 for ports).
    pub key_len: u32,
    /// Default element timeout in ms; `None` leaves elements without one.
    pub timeout_ms: Option<u64>,
    /// Most elements the kernel lets the set hold (`size` in nft); past it
    /// an add fails with `ENFILE`. `None`: unbounded.
    pub size: Option<u32>,
    /// Unique within a batch, so a rule in the same batch can refer to the set.
    pub id: u32,
}

/// What a rule does with a matching packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Discard silently (an immediate `NF_DROP` verdict).
    Drop,
    /// ICMP(v6) port unreachable.
    Reject,
}

/// `meta nfproto X <saddr> @set [meta l4proto P] [th dport @ports] drop|reject
/// comment "..."`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleDef<'a> {
    /// `NFTA_RULE_TABLE`.
    pub table: &'a str,
    /// `NFTA_RULE_CHAIN`.
    pub chain: &'a str,
    /// `NFPROTO_IPV4` or `NFPROTO_IPV6`: guards the source-address load,
    /// because an `inet` chain sees both families.
    pub nfproto: u8,
    /// Source address in the network header: offset 12 / length 4 for IPv4,
    /// offset 8 / length 16 for IPv6.
    pub saddr_offset: u32,
    /// See `saddr_offset`.
    pub saddr_len: u32,
    /// The set looked up and its batch id (used when created in the same batch).
    pub set: &'a str,
    /// See `set`.
    pub set_id: u32,
    /// `meta l4proto` to match (`IPPROTO_TCP`, `IPPROTO_UDP`); `None`: any.
    pub l4proto: Option<u8>,
    /// A set of destination ports (`inet_service`) and its batch id.
    pub dport_set: Option<(&'a str, u32)>,
    /// What to do with a matching packet.
    pub verdict: Verdict,
    /// Stored as the rule's user data (`NFTA_RULE_USERDATA`); banset finds
    /// its own rules again by it.
    pub comment: &'a str,
    /// `Some` for an allow-only set: the rule matches sources in none of
    /// the sets, never from loopback.
    pub allow_only: Option<AllowOnlyMatch<'a>>,
}

/// What turns a [`RuleDef`] into an allow-only rule: every lookup is
/// inverted (`saddr != @set`; several in one rule AND together, so a
/// source in any of them is not matched), and `iif != lo` keeps the host's
/// own traffic, whatever its address, out of the rule. It never accepts:
/// ban sets' rules still see members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllowOnlyMatch<'a> {
    /// The same family's prefix set and its batch id, when the set has one.
    pub also_not_in: Option<(&'a str, u32)>,
}

/// `add table inet NAME`. Flags are left out so an existing table is not
/// modified.
pub fn new_table(batch: &mut Batch, table: &str) {
    batch.push(
        msg_type::NEWTABLE,
        Op::CreateTable,
        nlm_flags::CREATE,
        format!("create table inet {table}"),
        |a| a.str(table_attr::NAME, table),
    );
}

/// `delete table inet NAME`: removes the table with its chains, rules and
/// sets.
pub fn del_table(batch: &mut Batch, table: &str) {
    batch.push(
        msg_type::DELTABLE,
        Op::DeleteTable,
        0,
        format!("delete table inet {table}"),
        |a| a.str(table_attr::NAME, table),
    );
}

/// `add chain`: creates the base chain if missing (`NLM_F_CREATE`, no
/// `NLM_F_EXCL`).
pub fn new_chain(batch: &mut Batch, chain: &BaseChain<'_>) {
    batch.push(
        msg_type::NEWCHAIN,
        Op::CreateChain,
        nlm_flags::CREATE,
        format!("create chain inet {} {}", chain.table, chain.name),
        |a| {
            a.str(chain_attr::TABLE, chain.table);
            a.str(chain_attr::NAME, chain.name);
            a.str(chain_attr::TYPE, "filter");
            a.u32(chain_attr::POLICY, chain.policy);
            a.nest(chain_attr::HOOK, |a| {
                a.u32(chain_attr::HOOK_HOOKNUM, chain.hook);
                a.u32(chain_attr::HOOK_PRIORITY, chain.priority as u32);
            });
        },
    );
}

/// `add set`: without `NLM_F_EXCL`, so an identical existing set is fine
/// (and its default timeout is updated), while one with other flags or key
/// is refused with `EEXIST`.
pub fn new_set(batch: &mut Batch, set: &SetDef<'_>) {
    batch.push(
        msg_type::NEWSET,
        Op::CreateSet,
        nlm_flags::CREATE,
        format!("create set inet {} {}", set.table, set.name),
        |a| {
            a.str(set_attr::TABLE, set.table);
            a.str(set_attr::NAME, set.name);
            a.u32(set_attr::FLAGS, set.flags);
            a.u32(set_attr::KEY_TYPE, set.key_type);
            a.u32(set_attr::KEY_LEN, set.key_len);
            if let Some(size) = set.size {
                a.nest(set_attr::DESC, |d| d.u32(set_desc_attr::SIZE, size));
            }
            a.u32(set_attr::ID, set.id);
            if let Some(ms) = set.timeout_ms {
                a.u64(set_attr::TIMEOUT, ms);
            }
        },
    );
}

/// `delete set inet TABLE NAME`. The kernel refuses (`EBUSY`) while a rule
/// still refers to the set, so delete its rule first, in the same batch.
pub fn del_set(batch: &mut Batch, table: &str, name: &str) {
    batch.push(
        msg_type::DELSET,
        Op::DeleteSet,
        0,
        format!("delete set inet {table} {name}"),
        |a| {
            a.str(set_attr::TABLE, table);
            a.str(set_attr::NAME, name);
        },
    );
}

/// `add rule` (appended to the chain).
pub fn new_rule(batch: &mut Batch, rule: &RuleDef<'_>) {
    batch.push(
        msg_type::NEWRULE,
        Op::AddRule,
        nlm_flags::CREATE | nlm_flags::APPEND,
        format!(
            "add rule to chain inet {} {} ({})",
            rule.table, rule.chain, rule.comment
        ),
        |a| {
            a.str(rule_attr::TABLE, rule.table);
            a.str(rule_attr::CHAIN, rule.chain);
            a.nest(rule_attr::EXPRESSIONS, |a| write_expressions(a, rule));
            a.bytes(rule_attr::USERDATA, &comment_udata(rule.comment));
        },
    );
}

/// `delete rule` by handle (from [`parse_rule`]); `what` describes the
/// rule in error messages.
pub fn del_rule(batch: &mut Batch, table: &str, chain: &str, handle: u64, what: &str) {
    batch.push(
        msg_type::DELRULE,
        Op::DeleteRule,
        0,
        format!("delete rule {handle} ({what}) from chain inet {table} {chain}"),
        |a| {
            a.str(rule_attr::TABLE, table);
            a.str(rule_attr::CHAIN, chain);
            a.u64(rule_attr::HANDLE, handle);
        },
    );
}

fn write_expressions(a: &mut Attrs<'_>, rule: &RuleDef<'_>) {
    expr(a, "meta", |a| {
        a.u32(expr_attr::META_KEY, NFT_META_NFPROTO);
        a.u32(expr_attr::META_DREG, NFT_REG_1);
    });
    cmp_eq(a, rule.nfproto);
    if rule.allow_only.is_some() {
        expr(a, "meta", |a| {
            a.u32(expr_attr::META_KEY, NFT_META_IIF);
            a.u32(expr_attr::META_DREG, NFT_REG_1);
        });
        // The kernel compares the register's bytes: an ifindex is a native-endian u32.
        expr(a, "cmp", |a| {
            a.u32(expr_attr::CMP_SREG, NFT_REG_1);
            a.u32(expr_attr::CMP_OP, NFT_CMP_NEQ);
            a.nest(expr_attr::CMP_DATA, |a| {
                a.bytes(expr_attr::DATA_VALUE, &LOOPBACK_IFINDEX.to_ne_bytes())
            });
        });
    }
    expr(a, "payload", |a| {
        a.u32(expr_attr::PAYLOAD_DREG, NFT_REG_1);
        a.u32(expr_attr::PAYLOAD_BASE, NFT_PAYLOAD_NETWORK_HEADER);
        a.u32(expr_attr::PAYLOAD_OFFSET, rule.saddr_offset);
        a.u32(expr_attr::PAYLOAD_LEN, rule.saddr_len);
    });
    match rule.allow_only {
        None => lookup(a, rule.set, rule.set_id, false),
        Some(allow) => {
            // A lookup leaves its source register alone: both read the saddr.
            lookup(a, rule.set, rule.set_id, true);
            if let Some((set, id)) = allow.also_not_in {
                lookup(a, set, id, true);
            }
        }
    }
    if let Some(proto) = rule.l4proto {
        expr(a, "meta", |a| {
            a.u32(expr_attr::META_KEY, NFT_META_L4PROTO);
            a.u32(expr_attr::META_DREG, NFT_REG_1);
        });
        cmp_eq(a, proto);
    }
    if let Some((ports, ports_id)) = rule.dport_set {
        // `th dport`: bytes 2-3 of the transport header, valid for TCP and
        // UDP alike; the l4proto match above guarantees one of them.
        expr(a, "payload", |a| {
            a.u32(expr_attr::PAYLOAD_DREG, NFT_REG_1);
            a.u32(expr_attr::PAYLOAD_BASE, NFT_PAYLOAD_TRANSPORT_HEADER);
            a.u32(expr_attr::PAYLOAD_OFFSET, 2);
            a.u32(expr_attr::PAYLOAD_LEN, 2);
        });
        lookup(a, ports, ports_id, false);
    }
    match rule.verdict {
        Verdict::Drop => expr(a, "immediate", |a| {
            a.u32(expr_attr::IMMEDIATE_DREG, NFT_REG_VERDICT);
            a.nest(expr_attr::IMMEDIATE_DATA, |a| {
                a.nest(expr_attr::DATA_VERDICT, |a| {
                    a.u32(expr_attr::VERDICT_CODE, NF_DROP);
                });
            });
        }),
        Verdict::Reject => expr(a, "reject", |a| {
            a.u32(expr_attr::REJECT_TYPE, NFT_REJECT_ICMPX_UNREACH);
            a.u8(expr_attr::REJECT_ICMP_CODE, NFT_REJECT_ICMPX_PORT_UNREACH);
        }),
    }
}

fn expr(a: &mut Attrs<'_>, name: &str, data: impl FnOnce(&mut Attrs<'_>)) {
    a.nest(expr_attr::LIST_ELEM, |a| {
        a.str(expr_attr::NAME, name);
        a.nest(expr_attr::DATA, |a| data(a));
    });
}

fn cmp_eq(a: &mut Attrs<'_>, byte: u8) {
    expr(a, "cmp", |a| {
        a.u32(expr_attr::CMP_SREG, NFT_REG_1);
        a.u32(expr_attr::CMP_OP, NFT_CMP_EQ);
        a.nest(expr_attr::CMP_DATA, |a| a.u8(expr_attr::DATA_VALUE, byte));
    });
}

fn lookup(a: &mut Attrs<'_>, set: &str, set_id: u32, inverted: bool) {
    expr(a, "lookup", |a| {
        a.u32(expr_attr::LOOKUP_SREG, NFT_REG_1);
        a.str(expr_attr::LOOKUP_SET, set);
        a.u32(expr_attr::LOOKUP_SET_ID, set_id);
        if inverted {
            a.u32(expr_attr::LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
        }
    });
}

/// nft's rule user data: TLVs of `u8 type, u8 length, value`; a comment is
/// type 0 with its NUL. Comments longer than 254 bytes are cut (nft caps
/// them at 128; banset's are short).
fn comment_udata(comment: &str) -> Vec<u8> {
    let text = &comment.as_bytes()[..comment.len().min(254)];
    let mut out = Vec::with_capacity(text.len() + 3);
    out.push(UDATA_RULE_COMMENT);
    out.push((text.len() + 1) as u8);
    out.extend_from_slice(text);
    out.push(0);
    out
}

fn parse_comment_udata(mut udata: &[u8]) -> Option<String> {
    while let [ty, len, rest @ ..] = udata {
        let value = rest.get(..usize::from(*len))?;
        if *ty == UDATA_RULE_COMMENT {
            return c_str(value, "comment").ok().map(str::to_owned);
        }
        udata = &rest[usize::from(*len)..];
    }
    None
}

/// GETRULE dump of `table` (and `chain`, when given).
pub fn get_rules(seq: u32, table: &str, chain: Option<&str>) -> Result<Vec<u8>, EncodeError> {
    dump_request(msg_type::GETRULE, seq, |a| {
        a.str(rule_attr::TABLE, table);
        if let Some(chain) = chain {
            a.str(rule_attr::CHAIN, chain);
        }
    })
}

/// GETSET dump of the sets of `table`.
pub fn get_sets(seq: u32, table: &str) -> Result<Vec<u8>, EncodeError> {
    dump_request(msg_type::GETSET, seq, |a| a.str(set_attr::TABLE, table))
}

/// GETSET of one set: the kernel answers with the set and an ACK, or with
/// `ENOENT` when the table or the set does not exist.
pub fn get_set(seq: u32, table: &str, name: &str) -> Result<Vec<u8>, EncodeError> {
    let mut buf = Vec::with_capacity(64);
    write_message(
        &mut buf,
        nft_header(msg_type::GETSET, nlm_flags::REQUEST | nlm_flags::ACK, seq),
        |a| {
            a.str(set_attr::TABLE, table);
            a.str(set_attr::NAME, name);
        },
    )?;
    Ok(buf)
}

/// GETCHAIN dump of every `inet` chain (the kernel does not filter chain
/// dumps by table; [`ChainInfo::table`] does).
pub fn get_chains(seq: u32) -> Result<Vec<u8>, EncodeError> {
    dump_request(msg_type::GETCHAIN, seq, |_| {})
}

pub(crate) fn dump_request(
    msg: u8,
    seq: u32,
    body: impl FnOnce(&mut Attrs<'_>),
) -> Result<Vec<u8>, EncodeError> {
    let mut buf = Vec::with_capacity(64);
    write_message(
        &mut buf,
        nft_header(msg, nlm_flags::REQUEST | nlm_flags::DUMP, seq),
        body,
    )?;
    Ok(buf)
}

/// A rule from a GETRULE dump: enough to find and delete banset's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleInfo {
    /// `NFTA_RULE_TABLE`.
    pub table: String,
    /// `NFTA_RULE_CHAIN`.
    pub chain: String,
    /// `NFTA_RULE_HANDLE`: the rule's id within its table, for [`del_rule`].
    pub handle: u64,
    /// The comment from `NFTA_RULE_USERDATA`; `None` without one.
    pub comment: Option<String>,
}

/// Decodes one NEWRULE message of a GETRULE dump. A rule without a handle
/// is an error.
pub fn parse_rule(msg: &NlMsg<'_>) -> Result<RuleInfo, DecodeError> {
    let mut rule = RuleInfo {
        table: String::new(),
        chain: String::new(),
        handle: 0,
        comment: None,
    };
    let mut have_handle = false;
    for attr in msg.nft_attrs()? {
        let (ty, value) = attr?;
        match ty {
            rule_attr::TABLE => rule.table = c_str(value, "rule table")?.to_owned(),
            rule_attr::CHAIN => rule.chain = c_str(value, "rule chain")?.to_owned(),
            rule_attr::HANDLE => {
                rule.handle = be_u64(value, "rule handle")?;
                have_handle = true;
            }
            rule_attr::USERDATA => rule.comment = parse_comment_udata(value),
            _ => {}
        }
    }
    if !have_handle {
        return Err(DecodeError::new("rule without a handle"));
    }
    Ok(rule)
}

/// A set from a GETSET dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetInfo {
    /// `NFTA_SET_TABLE`.
    pub table: String,
    /// `NFTA_SET_NAME`.
    pub name: String,
    /// `NFTA_SET_FLAGS`: [`set_flags`] bits (0 when absent).
    pub flags: u32,
    /// `NFTA_SET_KEY_TYPE` (0 when absent).
    pub key_type: u32,
    /// `NFTA_SET_KEY_LEN` in bytes (0 when absent).
    pub key_len: u32,
    /// `NFTA_SET_TIMEOUT`: the default element timeout in ms; `None` when the
    /// set has none.
    pub timeout_ms: Option<u64>,
}

/// Decodes one NEWSET message of a GETSET dump or reply. A set without a
/// name is an error.
pub fn parse_set(msg: &NlMsg<'_>) -> Result<SetInfo, DecodeError> {
    let mut set = SetInfo {
        table: String::new(),
        name: String::new(),
        flags: 0,
        key_type: 0,
        key_len: 0,
        timeout_ms: None,
    };
    for attr in msg.nft_attrs()? {
        let (ty, value) = attr?;
        match ty {
            set_attr::TABLE => set.table = c_str(value, "set table")?.to_owned(),
            set_attr::NAME => set.name = c_str(value, "set name")?.to_owned(),
            set_attr::FLAGS => set.flags = be_u32(value, "set flags")?,
            set_attr::KEY_TYPE => set.key_type = be_u32(value, "set key type")?,
            set_attr::KEY_LEN => set.key_len = be_u32(value, "set key length")?,
            set_attr::TIMEOUT => set.timeout_ms = Some(be_u64(value, "set timeout")?),
            _ => {}
        }
    }
    if set.name.is_empty() {
        return Err(DecodeError::new("set without a name"));
    }
    Ok(set)
}

/// A chain from a GETCHAIN dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainInfo {
    /// `NFTA_CHAIN_TABLE`: check it, since chain dumps cover every table.
    pub table: String,
    /// `NFTA_CHAIN_NAME`.
    pub name: String,
}

/// Decodes one NEWCHAIN message of a GETCHAIN dump.
pub fn parse_chain(msg: &NlMsg<'_>) -> Result<ChainInfo, DecodeError> {
    let mut chain = ChainInfo {
        table: String::new(),
        name: String::new(),
    };
    for attr in msg.nft_attrs()? {
        let (ty, value) = attr?;
        match ty {
            chain_attr::TABLE => chain.table = c_str(value, "chain table")?.to_owned(),
            chain_attr::NAME => chain.name = c_str(value, "chain name")?.to_owned(),
            _ => {}
        }
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::super::{AttrIter, MsgIter, NLMSG_HDRLEN};
    use super::*;

    /// The payload (after nlmsghdr + nfgenmsg) of the only message in a batch.
    fn single_message_attrs(build: impl FnOnce(&mut Batch)) -> Vec<u8> {
        let mut batch = Batch::new(1);
        build(&mut batch);
        let sealed = batch.finish().unwrap();
        let msgs: Vec<_> = MsgIter::new(sealed.bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(msgs.len(), 3);
        msgs[1].payload[4..].to_vec()
    }

    /// Golden bytes as `nft --debug=mnl` printed them for
    /// `add chain inet banset input { type filter hook input priority -10; policy accept; }`.
    #[test]
    fn base_chain_matches_nft() {
        let got = single_message_attrs(|b| {
            new_chain(
                b,
                &BaseChain {
                    table: "banset",
                    name: "input",
                    hook: NF_INET_LOCAL_IN,
                    priority: -10,
                    policy: NF_ACCEPT,
                },
            )
        });
        #[rustfmt::skip]
        let want: Vec<u8> = [
            &[11, 0, 1, 0][..], b"banset\0\0",          // NFTA_CHAIN_TABLE
            &[10, 0, 3, 0], b"input\0\0\0",             // NFTA_CHAIN_NAME
            &[11, 0, 7, 0], b"filter\0\0",              // NFTA_CHAIN_TYPE
            &[8, 0, 5, 0], &[0, 0, 0, 1],               // NFTA_CHAIN_POLICY = NF_ACCEPT
            &[20, 0, 4, 0x80],                          // NFTA_CHAIN_HOOK (nested)
            &[8, 0, 1, 0], &[0, 0, 0, 1],               //   HOOKNUM = NF_INET_LOCAL_IN
            &[8, 0, 2, 0], &[0xff, 0xff, 0xff, 0xf6],   //   PRIORITY = -10
        ].concat();
        assert_eq!(got, want);
    }

    /// `add set inet banset f_v4 { type ipv4_addr; size 65536; flags timeout; timeout 1h; }`
    /// as nft sends it, minus nft's own NFTA_SET_USERDATA (key byte order,
    /// which `nft` derives from the key type anyway).
    #[test]
    fn set_matches_nft() {
        let got = single_message_attrs(|b| {
            new_set(
                b,
                &SetDef {
                    table: "banset",
                    name: "f_v4",
                    flags: set_flags::TIMEOUT,
                    key_type: key_type::IPV4_ADDR,
                    key_len: 4,
                    timeout_ms: Some(3_600_000),
                    size: Some(65_536),
                    id: 1,
                },
            )
        });
        #[rustfmt::skip]
        let want: Vec<u8> = [
            &[11, 0, 1, 0][..], b"banset\0\0",          // NFTA_SET_TABLE
            &[9, 0, 2, 0], b"f_v4\0\0\0\0",             // NFTA_SET_NAME
            &[8, 0, 3, 0], &[0, 0, 0, 0x10],            // NFTA_SET_FLAGS = TIMEOUT
            &[8, 0, 4, 0], &[0, 0, 0, 7],               // NFTA_SET_KEY_TYPE = ipv4_addr
            &[8, 0, 5, 0], &[0, 0, 0, 4],               // NFTA_SET_KEY_LEN
            &[12, 0, 9, 0x80],                          // NFTA_SET_DESC (nested)
            &[8, 0, 1, 0], &[0, 1, 0, 0],               //   NFTA_SET_DESC_SIZE 65,536
            &[8, 0, 10, 0], &[0, 0, 0, 1],              // NFTA_SET_ID
            &[12, 0, 11, 0], &[0, 0, 0, 0, 0, 0x36, 0xee, 0x80], // NFTA_SET_TIMEOUT 3,600,000 ms
        ].concat();
        assert_eq!(got, want);
    }

    /// `add rule inet banset input meta nfproto ipv4 ip saddr @f_v4 drop
    /// comment "banset f_v4"`, byte for byte as nft 1.0.6 sends it.
    #[test]
    fn drop_rule_matches_nft() {
        let got = single_message_attrs(|b| {
            new_rule(
                b,
                &RuleDef {
                    table: "banset",
                    chain: "input",
                    nfproto: super::super::NFPROTO_IPV4,
                    saddr_offset: 12,
                    saddr_len: 4,
                    set: "f_v4",
                    set_id: 1,
                    l4proto: None,
                    dport_set: None,
                    verdict: Verdict::Drop,
                    comment: "banset f_v4",
                    allow_only: None,
                },
            )
        });
        #[rustfmt::skip]
        let want: Vec<u8> = [
            &[11, 0, 1, 0][..], b"banset\0\0",          // NFTA_RULE_TABLE
            &[10, 0, 2, 0], b"input\0\0\0",             // NFTA_RULE_CHAIN
            &[232, 0, 4, 0x80],                         // NFTA_RULE_EXPRESSIONS
            &[36, 0, 1, 0x80],                          //  LIST_ELEM
            &[9, 0, 1, 0], b"meta\0\0\0\0",             //   NAME "meta"
            &[20, 0, 2, 0x80],                          //   DATA
            &[8, 0, 2, 0], &[0, 0, 0, 15],              //    META_KEY = NFPROTO
            &[8, 0, 1, 0], &[0, 0, 0, 1],               //    META_DREG = reg 1
            &[44, 0, 1, 0x80],                          //  LIST_ELEM
            &[8, 0, 1, 0], b"cmp\0",                    //   NAME "cmp"
            &[32, 0, 2, 0x80],                          //   DATA
            &[8, 0, 1, 0], &[0, 0, 0, 1],               //    CMP_SREG = reg 1
            &[8, 0, 2, 0], &[0, 0, 0, 0],               //    CMP_OP = EQ
            &[12, 0, 3, 0x80],                          //    CMP_DATA
            &[5, 0, 1, 0], &[2, 0, 0, 0],               //     DATA_VALUE = NFPROTO_IPV4
            &[52, 0, 1, 0x80],                          //  LIST_ELEM
            &[12, 0, 1, 0], b"payload\0",               //   NAME "payload"
            &[36, 0, 2, 0x80],                          //   DATA
            &[8, 0, 1, 0], &[0, 0, 0, 1],               //    PAYLOAD_DREG = reg 1
            &[8, 0, 2, 0], &[0, 0, 0, 1],               //    PAYLOAD_BASE = network header
            &[8, 0, 3, 0], &[0, 0, 0, 12],              //    PAYLOAD_OFFSET = 12
            &[8, 0, 4, 0], &[0, 0, 0, 4],               //    PAYLOAD_LEN = 4
            &[48, 0, 1, 0x80],                          //  LIST_ELEM
            &[11, 0, 1, 0], b"lookup\0\0",              //   NAME "lookup"
            &[32, 0, 2, 0x80],                          //   DATA
            &[8, 0, 2, 0], &[0, 0, 0, 1],               //    LOOKUP_SREG = reg 1
            &[9, 0, 1, 0], b"f_v4\0\0\0\0",             //    LOOKUP_SET
            &[8, 0, 4, 0], &[0, 0, 0, 1],               //    LOOKUP_SET_ID
            &[48, 0, 1, 0x80],                          //  LIST_ELEM
            &[14, 0, 1, 0], b"immediate\0\0\0",         //   NAME "immediate"
            &[28, 0, 2, 0x80],                          //   DATA
            &[8, 0, 1, 0], &[0, 0, 0, 0],               //    IMMEDIATE_DREG = verdict
            &[16, 0, 2, 0x80],                          //    IMMEDIATE_DATA
            &[12, 0, 2, 0x80],                          //     DATA_VERDICT
            &[8, 0, 1, 0], &[0, 0, 0, 0],               //      VERDICT_CODE = NF_DROP
            &[18, 0, 7, 0],                             // NFTA_RULE_USERDATA
            &[0, 12], b"banset f_v4\0", &[0, 0],        //  comment TLV, padded
        ].concat();
        assert_eq!(got, want);
    }

    /// `reject with icmpx type port-unreachable`, as nft sends it: the
    /// expression list element only.
    #[test]
    fn reject_port_filter_encoding() {
        let got = single_message_attrs(|b| {
            new_rule(
                b,
                &RuleDef {
                    table: "t",
                    chain: "c",
                    nfproto: super::super::NFPROTO_IPV6,
                    saddr_offset: 8,
                    saddr_len: 16,
                    set: "s",
                    set_id: 1,
                    l4proto: Some(6),
                    dport_set: Some(("p", 2)),
                    verdict: Verdict::Reject,
                    comment: "x",
                    allow_only: None,
                },
            )
        });
        let top: Vec<_> = AttrIter::new(&got).collect::<Result<_, _>>().unwrap();
        let exprs: Vec<_> = AttrIter::new(top[2].1).collect::<Result<_, _>>().unwrap();
        let names: Vec<&str> = exprs
            .iter()
            .map(|(_, e)| {
                let (_, name) = AttrIter::new(e).next().unwrap().unwrap();
                c_str(name, "name").unwrap()
            })
            .collect();
        assert_eq!(
            names,
            ["meta", "cmp", "payload", "lookup", "meta", "cmp", "payload", "lookup", "reject"]
        );
        #[rustfmt::skip]
        let want_reject: Vec<u8> = [
            &[11, 0, 1, 0][..], b"reject\0\0",          // NAME "reject"
            &[20, 0, 2, 0x80],                          // DATA
            &[8, 0, 1, 0], &[0, 0, 0, 2],               //  REJECT_TYPE = ICMPX_UNREACH
            &[5, 0, 2, 0], &[1, 0, 0, 0],               //  REJECT_ICMP_CODE = ICMPX_PORT_UNREACH
        ].concat();
        assert_eq!(exprs[8].1, &want_reject[..]);
        // th dport: transport header, offset 2, length 2
        let (_, th) = exprs[6];
        let data: Vec<_> = AttrIter::new(th).collect::<Result<_, _>>().unwrap();
        let fields: Vec<u32> = AttrIter::new(data[1].1)
            .map(|a| be_u32(a.unwrap().1, "x").unwrap())
            .collect();
        assert_eq!(fields, [1, 2, 2, 2]);
    }

    /// `meta nfproto ipv4 iif != lo ip saddr != @s ip saddr != @n drop`:
    /// nft --debug=netlink prints `cmp neq reg 1 0x00000001` for the iif
    /// and `lookup reg 1 set s 0x1` (flags INV) for each negated lookup.
    #[test]
    fn allow_only_rule_inverts_lookups_and_skips_loopback() {
        let got = single_message_attrs(|b| {
            new_rule(
                b,
                &RuleDef {
                    table: "t",
                    chain: "c",
                    nfproto: super::super::NFPROTO_IPV4,
                    saddr_offset: 12,
                    saddr_len: 4,
                    set: "s",
                    set_id: 1,
                    l4proto: None,
                    dport_set: None,
                    verdict: Verdict::Drop,
                    comment: "x",
                    allow_only: Some(AllowOnlyMatch {
                        also_not_in: Some(("n", 3)),
                    }),
                },
            )
        });
        let top: Vec<_> = AttrIter::new(&got).collect::<Result<_, _>>().unwrap();
        let exprs: Vec<_> = AttrIter::new(top[2].1).collect::<Result<_, _>>().unwrap();
        // (expression name, its data attributes as (type, bytes))
        type Attr = (u16, Vec<u8>);
        let parts: Vec<(&str, Vec<Attr>)> = exprs
            .iter()
            .map(|(_, e)| {
                let attrs: Vec<_> = AttrIter::new(e).collect::<Result<_, _>>().unwrap();
                let name = c_str(attrs[0].1, "name").unwrap();
                let data = AttrIter::new(attrs[1].1)
                    .map(|a| {
                        let (t, v) = a.unwrap();
                        (t, v.to_vec())
                    })
                    .collect();
                (name, data)
            })
            .collect();
        let names: Vec<&str> = parts.iter().map(|p| p.0).collect();
        assert_eq!(
            names,
            [
                "meta",
                "cmp",
                "meta",
                "cmp",
                "payload",
                "lookup",
                "lookup",
                "immediate"
            ]
        );
        // meta load iif; cmp neq 1 (native endian, as nft sends it)
        assert_eq!(parts[2].1[0], (2, vec![0, 0, 0, 4]));
        assert_eq!(parts[3].1[1], (2, vec![0, 0, 0, 1]));
        let data: Vec<_> = AttrIter::new(&parts[3].1[2].1)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(data[0].1, 1u32.to_ne_bytes());
        for (lookup, set) in [(&parts[5], "s"), (&parts[6], "n")] {
            assert!(lookup.1.contains(&(1, format!("{set}\0").into_bytes())));
            assert!(lookup.1.contains(&(5, vec![0, 0, 0, 1])), "{lookup:?}");
        }
    }

    fn reply(attrs: impl FnOnce(&mut Attrs<'_>)) -> Vec<u8> {
        let mut buf = Vec::new();
        write_message(&mut buf, nft_header(msg_type::NEWRULE, 2, 9), attrs).unwrap();
        buf
    }

    #[test]
    fn parses_rule_dump_entries() {
        let buf = reply(|a| {
            a.str(rule_attr::TABLE, "banset");
            a.str(rule_attr::CHAIN, "input");
            a.u64(rule_attr::HANDLE, 4);
            a.nest(rule_attr::EXPRESSIONS, |_| {});
            a.bytes(rule_attr::USERDATA, &comment_udata("banset f_v4"));
        });
        let msg = MsgIter::new(&buf).next().unwrap().unwrap();
        assert_eq!(msg.payload.len(), buf.len() - NLMSG_HDRLEN);
        let rule = parse_rule(&msg).unwrap();
        assert_eq!(
            rule,
            RuleInfo {
                table: "banset".into(),
                chain: "input".into(),
                handle: 4,
                comment: Some("banset f_v4".into()),
            }
        );
        // A rule without a handle, or with a truncated comment TLV.
        let buf = reply(|a| a.bytes(rule_attr::USERDATA, &[0, 50, b'x']));
        let msg = MsgIter::new(&buf).next().unwrap().unwrap();
        assert!(parse_rule(&msg).is_err());
        assert_eq!(parse_comment_udata(&[0, 50, b'x']), None);
        assert_eq!(
            parse_comment_udata(&[1, 1, 9, 0, 2, b'a', 0]),
            Some("a".into())
        );
    }

    #[test]
    fn parses_set_dump_entries() {
        let buf = reply(|a| {
            a.str(set_attr::TABLE, "banset");
            a.str(set_attr::NAME, "f_v4net");
            a.u32(set_attr::FLAGS, set_flags::INTERVAL | set_flags::TIMEOUT);
            a.u32(set_attr::KEY_TYPE, 7);
            a.u32(set_attr::KEY_LEN, 4);
        });
        let msg = MsgIter::new(&buf).next().unwrap().unwrap();
        let set = parse_set(&msg).unwrap();
        assert_eq!(set.name, "f_v4net");
        assert_eq!(set.flags, 0x14);
        assert_eq!(set.timeout_ms, None);
        let buf = reply(|a| a.u32(set_attr::FLAGS, 1));
        let msg = MsgIter::new(&buf).next().unwrap().unwrap();
        assert!(parse_set(&msg).is_err());
        let buf = reply(|a| a.bytes(set_attr::FLAGS, &[1]));
        let msg = MsgIter::new(&buf).next().unwrap().unwrap();
        assert!(parse_set(&msg).is_err());
    }

    #[test]
    fn dump_requests() {
        let req = get_rules(5, "banset", Some("input")).unwrap();
        let msg = MsgIter::new(&req).next().unwrap().unwrap();
        assert_eq!(msg.ty, 0x0a07);
        assert_eq!(msg.flags, 0x301);
        assert_eq!(msg.nft_attrs().unwrap().count(), 2);
        let req = get_sets(6, "banset").unwrap();
        let msg = MsgIter::new(&req).next().unwrap().unwrap();
        assert_eq!(msg.ty, 0x0a0a);
        let req = get_set(6, "banset", "s").unwrap();
        let msg = MsgIter::new(&req).next().unwrap().unwrap();
        assert_eq!((msg.ty, msg.flags), (0x0a0a, 0x5));
        let req = get_chains(7).unwrap();
        let msg = MsgIter::new(&req).next().unwrap().unwrap();
        assert_eq!((msg.ty, msg.payload.len()), (0x0a04, 4));
    }
}
