//! The backend against models of ipfw: a kernel that answers `IP_FW3`
//! requests by reading the bytes the real socket would get (so the native
//! encoders, chunking and result checks run), and an `ipfw` command that
//! keeps rules and, for the FreeBSD 15 path, tables. The conformance suite
//! runs over both paths here; whether FreeBSD agrees with the models is
//! what the VM tests (`vm-tests/run`) check.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use banset_core::errno::{EEXIST, EFBIG, EINVAL, ENOENT, ENOMEM, EOPNOTSUPP, ESRCH};
use banset_core::{Hook, SetName};
use banset_tests::conformance;

use super::*;
use crate::msg::{result, AF_INET, AF_INET6, OBJ_HEADER_LEN, TENTRY_LEN, XTABLE_INFO_LEN};
use crate::rule::Outcome;
use crate::tables::{Command, Native, Sockopt};

#[derive(Debug, Default)]
struct Table {
    limit: u32,
    entries: Vec<Target>,
}

/// `ip_fw_table.c` as far as banset uses it.
#[derive(Debug, Default)]
struct ModelKernel {
    tables: Mutex<HashMap<String, Table>>,
    calls: Mutex<Vec<u16>>,
    /// Every state a table passed through: its name and entries after each
    /// request that named it (`None`: it did not exist), so a test sees
    /// what a rule matching against it could have seen between calls.
    states: States,
}

type States = Mutex<Vec<(String, Option<Vec<Target>>)>>;

/// Records the state of each of `names` in `tables` into `states`.
fn record<'a, T: 'a>(
    states: &States,
    tables: &HashMap<String, T>,
    names: impl IntoIterator<Item = &'a str>,
    entries: impl Fn(&T) -> Vec<Target>,
) {
    let mut states = states.lock().unwrap();
    for n in names {
        states.push((n.to_string(), tables.get(n).map(&entries)));
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn name_of(buf: &[u8]) -> String {
    let n = &buf[32..96];
    let end = n.iter().position(|&b| b == 0).unwrap_or(n.len());
    String::from_utf8(n[..end].to_vec()).unwrap()
}

fn tentry_target(e: &[u8]) -> Result<Target, i32> {
    let addr = match e[8] {
        AF_INET => IpAddr::V4(Ipv4Addr::new(e[16], e[17], e[18], e[19])),
        AF_INET6 => {
            let mut v6 = [0u8; 16];
            v6.copy_from_slice(&e[16..32]);
            IpAddr::V6(Ipv6Addr::from(v6))
        }
        _ => return Err(EINVAL),
    };
    Target::listed(addr, e[9]).map_err(|_| EINVAL)
}

impl Sockopt for ModelKernel {
    fn set(&self, buf: &[u8]) -> Result<(), i32> {
        let opcode = u16_at(buf, 0);
        self.calls.lock().unwrap().push(opcode);
        let name = name_of(buf);
        let mut tables = self.tables.lock().unwrap();
        let r = self.set_in(&mut tables, opcode, name.clone(), buf);
        let second = (opcode == msg::XSWAP && buf.len() >= 176).then(|| name_of(&buf[80..]));
        record(
            &self.states,
            &tables,
            std::iter::once(name.as_str()).chain(second.as_deref()),
            |t| t.entries.clone(),
        );
        r
    }

    fn get(&self, buf: &mut [u8]) -> Result<usize, i32> {
        let opcode = u16_at(buf, 0);
        self.calls.lock().unwrap().push(opcode);
        let name = name_of(buf);
        let mut tables = self.tables.lock().unwrap();
        let r = self.get_in(&mut tables, opcode, &name, buf);
        if matches!(opcode, msg::XADD | msg::XDEL) {
            record(&self.states, &tables, [name.as_str()], |t| {
                t.entries.clone()
            });
        }
        r
    }
}

impl ModelKernel {
    fn set_in(
        &self,
        tables: &mut HashMap<String, Table>,
        opcode: u16,
        name: String,
        buf: &[u8],
    ) -> Result<(), i32> {
        match opcode {
            msg::XCREATE => {
                if buf.len() != OBJ_HEADER_LEN + XTABLE_INFO_LEN || buf[96] != msg::TABLE_ADDR {
                    return Err(EINVAL);
                }
                if tables.contains_key(&name) {
                    return Err(EEXIST);
                }
                let limit = u32_at(buf, 96 + 36);
                tables.insert(
                    name,
                    Table {
                        limit,
                        entries: Vec::new(),
                    },
                );
            }
            msg::XDESTROY => {
                tables.remove(&name).ok_or(ESRCH)?;
            }
            msg::XFLUSH => tables.get_mut(&name).ok_or(ESRCH)?.entries.clear(),
            msg::XSWAP => {
                // `swap_table()`: exactly a header and a second name TLV;
                // the entries change places, each table keeps its limit
                // and refuses the other's entries beyond it.
                if buf.len() != OBJ_HEADER_LEN + msg::NTLV_LEN
                    || u16_at(buf, 96) != msg::TLV_TBL_NAME
                    || u32_at(buf, 100) != msg::NTLV_LEN as u32
                {
                    return Err(EINVAL);
                }
                let other = name_of(&buf[80..]);
                let a = tables.get(&name).ok_or(ESRCH)?;
                let b = tables.get(&other).ok_or(ESRCH)?;
                let over = |t: &Table, n: usize| t.limit != 0 && n > t.limit as usize;
                if over(a, b.entries.len()) || over(b, a.entries.len()) {
                    return Err(EFBIG);
                }
                let a = tables.get_mut(&name).unwrap().entries.split_off(0);
                let b = std::mem::replace(&mut tables.get_mut(&other).unwrap().entries, a);
                tables.get_mut(&name).unwrap().entries = b;
            }
            _ => return Err(EINVAL),
        }
        Ok(())
    }

    fn get_in(
        &self,
        tables: &mut HashMap<String, Table>,
        opcode: u16,
        name: &str,
        buf: &mut [u8],
    ) -> Result<usize, i32> {
        let table = tables.get_mut(name).ok_or(ESRCH)?;
        let info_len = OBJ_HEADER_LEN + XTABLE_INFO_LEN;
        let write_info = |buf: &mut [u8], t: &Table| {
            let count = t.entries.len() as u32;
            buf[96] = msg::TABLE_ADDR;
            buf[96 + 28..96 + 32].copy_from_slice(&count.to_le_bytes());
            let size = (info_len + t.entries.len() * TENTRY_LEN) as u32;
            buf[96 + 32..96 + 36].copy_from_slice(&size.to_le_bytes());
            buf[96 + 36..96 + 40].copy_from_slice(&t.limit.to_le_bytes());
        };
        match opcode {
            msg::XINFO => {
                write_info(buf, table);
                Ok(info_len)
            }
            msg::XLIST => {
                let need = info_len + table.entries.len() * TENTRY_LEN;
                write_info(buf, table);
                if buf.len() < need {
                    return Err(ENOMEM);
                }
                for (i, t) in table.entries.iter().enumerate() {
                    let e = &mut buf[info_len + i * TENTRY_LEN..][..TENTRY_LEN];
                    e.fill(0);
                    e[4..8].copy_from_slice(&(TENTRY_LEN as u32).to_le_bytes());
                    e[8] = if t.family() == banset_core::Family::V4 {
                        AF_INET
                    } else {
                        AF_INET6
                    };
                    e[9] = t.prefix_len();
                    let o = t.addr_octets();
                    e[16..16 + o.len()].copy_from_slice(&o);
                }
                Ok(need)
            }
            msg::XADD | msg::XDEL => {
                let count = u32_at(buf, 96 + 8) as usize;
                if u32_at(buf, 96 + 4) as usize != 16 + count * TENTRY_LEN
                    || buf.len() != 96 + 16 + count * TENTRY_LEN
                {
                    return Err(EINVAL);
                }
                let mut targets = Vec::with_capacity(count);
                for i in 0..count {
                    let e = &buf[112 + i * TENTRY_LEN..][..TENTRY_LEN];
                    if u16_at(e, 12) != u16_at(buf, 12) {
                        return Err(EOPNOTSUPP);
                    }
                    targets.push(tentry_target(e)?);
                }
                let mut results = vec![result::IGNORED; count];
                let mut error = 0;
                if opcode == msg::XADD {
                    let new = targets
                        .iter()
                        .filter(|t| !table.entries.contains(t))
                        .count();
                    if table.limit > 0 && table.entries.len() + new > table.limit as usize {
                        // IPFW_CTF_ATOMIC: nothing is added.
                        error = EFBIG;
                        results.fill(result::LIMIT);
                    } else {
                        for (t, r) in targets.iter().zip(results.iter_mut()) {
                            if table.entries.contains(t) {
                                *r = result::UPDATED;
                            } else {
                                table.entries.push(*t);
                                *r = result::ADDED;
                            }
                        }
                    }
                } else {
                    for (t, r) in targets.iter().zip(results.iter_mut()) {
                        let before = table.entries.len();
                        table.entries.retain(|m| m != t);
                        *r = if table.entries.len() < before {
                            result::DELETED
                        } else {
                            result::NOTFOUND
                        };
                    }
                    if count == 1 && results[0] == result::NOTFOUND {
                        error = ENOENT;
                    }
                }
                for (i, r) in results.iter().enumerate() {
                    buf[112 + i * TENTRY_LEN + 10] = *r;
                }
                if error != 0 {
                    Err(error)
                } else {
                    Ok(buf.len())
                }
            }
            _ => Err(EINVAL),
        }
    }
}

impl Sockopt for Arc<ModelKernel> {
    fn set(&self, buf: &[u8]) -> Result<(), i32> {
        (**self).set(buf)
    }
    fn get(&self, buf: &mut [u8]) -> Result<usize, i32> {
        (**self).get(buf)
    }
}

/// `ipfw(8)`: numbered rules, and tables for the FreeBSD 15 path.
#[derive(Debug, Default)]
struct ModelIpfw {
    rules: Mutex<Vec<(u32, String)>>,
    tables: Mutex<HashMap<String, Vec<Target>>>,
    /// As [`ModelKernel::states`], after each `ipfw table` run.
    states: States,
}

fn done(stdout: String) -> Result<Outcome, BackendError> {
    Ok(Outcome {
        code: Some(0),
        stdout,
        stderr: String::new(),
    })
}

fn fail(stderr: &str) -> Result<Outcome, BackendError> {
    Ok(Outcome {
        code: Some(71),
        stdout: String::new(),
        stderr: format!("ipfw: {stderr}"),
    })
}

impl Runner for ModelIpfw {
    fn run(&self, args: &[String]) -> Result<Outcome, BackendError> {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut tables = self.tables.lock().unwrap();
        let r = self.run_in(&mut tables, &a);
        let named: Vec<&str> = match a.as_slice() {
            ["-q", "table", name, "swap", other] => vec![name, other],
            ["-q", "table", name, ..] => vec![name],
            _ => vec![],
        };
        record(&self.states, &tables, named, Vec::clone);
        r
    }
}

impl ModelIpfw {
    fn run_in(
        &self,
        tables: &mut HashMap<String, Vec<Target>>,
        a: &[&str],
    ) -> Result<Outcome, BackendError> {
        match a {
            ["list"] => {
                let mut rules = self.rules.lock().unwrap().clone();
                rules.push((65535, "deny ip from any to any".into()));
                rules.sort_by_key(|r| r.0);
                done(rules.iter().map(|(n, t)| format!("{n:05} {t}\n")).collect())
            }
            ["-q", "add", n, rest @ ..] => {
                self.rules
                    .lock()
                    .unwrap()
                    .push((n.parse().unwrap(), rest.join(" ")));
                done(String::new())
            }
            ["-q", "delete", n] => {
                let n: u32 = n.parse().unwrap();
                self.rules.lock().unwrap().retain(|r| r.0 != n);
                done(String::new())
            }
            ["table", name, "list"] => match tables.get(*name) {
                None => fail("table not found"),
                Some(entries) => done(
                    std::iter::once(format!("--- table({name}), set(0) ---\n"))
                        .chain(
                            entries
                                .iter()
                                .map(|t| format!("{}/{} 0\n", t.addr(), t.prefix_len())),
                        )
                        .collect(),
                ),
            },
            ["-q", "table", name, "create", "type", "addr", ..] => {
                if tables.contains_key(*name) {
                    return fail("table exists");
                }
                tables.insert(name.to_string(), Vec::new());
                done(String::new())
            }
            ["-q", "table", name, "destroy"] => match tables.remove(*name) {
                None => fail("table not found"),
                Some(_) => done(String::new()),
            },
            ["-q", "table", name, "flush"] => match tables.get_mut(*name) {
                None => fail("table not found"),
                Some(t) => {
                    t.clear();
                    done(String::new())
                }
            },
            ["-q", "table", name, "swap", other] => {
                if !tables.contains_key(*name) || !tables.contains_key(*other) {
                    return fail("table not found");
                }
                let a = tables.remove(*name).unwrap();
                let b = tables.insert(other.to_string(), a).unwrap();
                tables.insert(name.to_string(), b);
                done(String::new())
            }
            ["-q", "table", name, "atomic", "add", pairs @ ..] => {
                let Some(t) = tables.get_mut(*name) else {
                    return fail("table not found");
                };
                for pair in pairs.chunks(2) {
                    assert_eq!(pair.get(1), Some(&"0"), "every key has a value");
                    let key: Target = pair[0].parse().unwrap();
                    if !t.contains(&key) {
                        t.push(key);
                    }
                }
                done(String::new())
            }
            ["-q", "table", name, "delete", keys @ ..] => {
                let Some(t) = tables.get_mut(*name) else {
                    return fail("table not found");
                };
                for k in keys {
                    let key: Target = k.parse().unwrap();
                    if !t.contains(&key) {
                        return fail("record not found");
                    }
                    t.retain(|m| *m != key);
                }
                done(String::new())
            }
            _ => fail(&format!("model: unexpected arguments {a:?}")),
        }
    }
}

impl Runner for Arc<ModelIpfw> {
    fn run(&self, args: &[String]) -> Result<Outcome, BackendError> {
        (**self).run(args)
    }
}

struct Model {
    backend: IpfwBackend,
    kernel: Arc<ModelKernel>,
    ipfw: Arc<ModelIpfw>,
}

/// FreeBSD 11–14: tables native, the rule by command.
fn native() -> Model {
    let kernel = Arc::new(ModelKernel::default());
    let ipfw = Arc::new(ModelIpfw::default());
    Model {
        backend: IpfwBackend::with_parts(
            Box::new(Native::new(kernel.clone())),
            Box::new(ipfw.clone()),
        ),
        kernel,
        ipfw,
    }
}

/// FreeBSD 15: everything by command.
fn command() -> Model {
    let kernel = Arc::new(ModelKernel::default());
    let ipfw = Arc::new(ModelIpfw::default());
    Model {
        backend: IpfwBackend::with_parts(
            Box::new(Command::new(ipfw.clone())),
            Box::new(ipfw.clone()),
        ),
        kernel,
        ipfw,
    }
}

fn spec(name: &str) -> SetSpec {
    SetSpec::new(SetName::new(name).unwrap(), BackendKind::Ipfw)
}

fn entries(targets: &[&str]) -> Vec<KernelEntry> {
    targets
        .iter()
        .map(|s| KernelEntry {
            target: s.parse().unwrap(),
            timeout: None,
        })
        .collect()
}

#[test]
fn conformance_native() {
    conformance::run_all(&native().backend, "bt-");
}

#[test]
fn conformance_by_command() {
    conformance::run_all(&command().backend, "bt-");
}

#[test]
fn the_rule_goes_before_the_first_accepting_or_stateful_rule() {
    let m = native();
    m.ipfw.rules.lock().unwrap().extend([
        (100, "allow ip from any to any via lo0".to_string()),
        (300, "check-state :default".to_string()),
    ]);
    let (a, b) = (spec("f2b"), spec("smtp"));
    m.backend.ensure_set(&a).unwrap();
    m.backend.ensure_set(&b).unwrap();
    m.backend.ensure_set(&a).unwrap();
    let rules = m.ipfw.rules.lock().unwrap().clone();
    assert!(rules.contains(&(50, "deny ip from table(f2b) to any // banset f2b".into())));
    assert!(rules.contains(&(51, "deny ip from table(smtp) to any // banset smtp".into())));
    assert_eq!(rules.len(), 4, "ensure_set twice adds one rule: {rules:?}");
    assert_eq!(m.backend.health(&a).unwrap(), SetHealth::Present);
    // The rule deleted behind banset's back: trusted for a while, then
    // found incomplete and repaired.
    m.ipfw.rules.lock().unwrap().retain(|r| r.0 != 50);
    assert_eq!(m.backend.health(&a).unwrap(), SetHealth::Present);
    m.backend.rules_seen.clear();
    assert_eq!(m.backend.health(&a).unwrap(), SetHealth::Incomplete);
    m.backend.ensure_set(&a).unwrap();
    assert_eq!(m.backend.health(&a).unwrap(), SetHealth::Present);
    m.backend.destroy(&a).unwrap();
    assert_eq!(m.backend.health(&a).unwrap(), SetHealth::Missing);
    assert_eq!(m.ipfw.rules.lock().unwrap().len(), 3);
}

#[test]
fn destroy_never_deletes_an_admins_rule_sharing_the_number() {
    let m = native();
    let s = spec("f2b");
    m.backend.ensure_set(&s).unwrap();
    m.ipfw
        .rules
        .lock()
        .unwrap()
        .push((50, "count ip from any to any".into()));
    let e = m.backend.destroy(&s).unwrap_err();
    assert!(e.detail().contains("ipfw delete 50"), "{e}");
    assert_eq!(m.ipfw.rules.lock().unwrap().len(), 2);
}

#[test]
fn native_batches_are_cut_into_calls_and_checked_per_entry() {
    let m = native();
    let mut s = spec("bulk");
    s.hook = None;
    m.backend.ensure_set(&s).unwrap();
    let many: Vec<KernelEntry> = (0..9000u32)
        .map(|i| KernelEntry {
            target: Target::host(Ipv4Addr::from(0xc612_0000 + i).into()).unwrap(),
            timeout: None,
        })
        .collect();
    m.kernel.calls.lock().unwrap().clear();
    m.backend.add(&s, &many).unwrap();
    let adds = m
        .kernel
        .calls
        .lock()
        .unwrap()
        .iter()
        .filter(|&&c| c == msg::XADD)
        .count();
    assert_eq!(adds, 3, "9,000 entries in calls of 4,096");
    assert_eq!(m.backend.list(&s).unwrap().len(), 9000);
}

#[test]
fn the_tables_limit_is_the_sets_bound() {
    let m = native();
    let mut s = spec("small");
    s.max_elements = Some(2);
    m.backend.ensure_set(&s).unwrap();
    assert_eq!(m.kernel.tables.lock().unwrap()["small"].limit, 2);
    m.backend
        .add(&s, &entries(&["192.0.2.1", "2001:db8::1"]))
        .unwrap();
    let e = m.backend.add(&s, &entries(&["192.0.2.3"])).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::SetFull);
    // The kernel's own refusal (EFBIG) maps the same way.
    let e = crate::tables::Native::new(m.kernel.clone())
        .add("small", &["192.0.2.4".parse().unwrap()])
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::SetFull);
    assert_eq!(e.context(), "add to ipfw table small");
}

#[test]
fn one_table_holds_both_families() {
    let m = command();
    let s = spec("mixed");
    m.backend.ensure_set(&s).unwrap();
    m.backend
        .add(
            &s,
            &entries(&["192.0.2.1", "2001:db8::1", "198.51.100.0/24"]),
        )
        .unwrap();
    assert_eq!(m.ipfw.tables.lock().unwrap()["mixed"].len(), 3);
    let caps = m.backend.capabilities();
    assert!(caps.mixed_families && !caps.timeouts && caps.prefixes);
    let _ = Hook::default();
}

#[test]
fn off_freebsd_ipfw_is_unsupported() {
    if cfg!(target_os = "freebsd") {
        return;
    }
    assert_eq!(
        IpfwBackend::open().unwrap_err().kind(),
        ErrorKind::Unsupported
    );
}

#[test]
fn a_changed_rule_goes_in_before_the_old_one_leaves_and_the_table_stays() {
    let m = native();
    let old = spec("f2b");
    m.backend.ensure_set(&old).unwrap();
    m.backend
        .add(&old, &entries(&["192.0.2.1", "2001:db8::1"]))
        .unwrap();
    let mut new = old.clone();
    new.hook = Some(Hook {
        ports: banset_core::PortRange::parse_list("22,2222").unwrap(),
        protocol: Some(banset_core::Protocol::Tcp),
        block: banset_core::BlockType::Reject,
        permanent: false,
    });
    m.backend.change_set(&old, &new).unwrap();
    let rules = m.ipfw.rules.lock().unwrap().clone();
    assert_eq!(rules.len(), 1, "{rules:?}");
    // Added under the next free number while the old one (50) was still there.
    assert_eq!(rules[0].0, 51, "{rules:?}");
    assert!(
        rules[0].1.contains("22,2222") && rules[0].1.ends_with("// banset f2b"),
        "{rules:?}"
    );
    assert_eq!(m.backend.list(&new).unwrap().len(), 2, "every member kept");
    assert_eq!(m.backend.health(&new).unwrap(), SetHealth::Present);
    let mut bigger = new.clone();
    bigger.max_elements = Some(10);
    let e = m.backend.change_set(&new, &bigger).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(e.detail().contains("limit it was created with"), "{e}");
}

fn hosts(first: u32, n: u32) -> Vec<KernelEntry> {
    (first..first + n)
        .map(|i| KernelEntry {
            target: Target::host(Ipv4Addr::from(i).into()).unwrap(),
            timeout: None,
        })
        .collect()
}

fn sorted(entries: &[KernelEntry]) -> Vec<Target> {
    let mut v: Vec<Target> = entries.iter().map(|e| e.target).collect();
    v.sort();
    v
}

/// Issue 20: `banset replace` on ipfw flushed the live table and then
/// added, so between the calls an allow-only set's rule let nobody in
/// and a ban set's let everybody in; with more entries than one call
/// carries, the rule also saw the table half filled. Every state the live
/// table passes through must be the old content or the new one, on both
/// paths.
#[test]
fn ipfw_replace_never_shows_the_live_table_empty_or_partial() {
    for (m, by_command) in [(native(), false), (command(), true)] {
        let states = if by_command {
            &m.ipfw.states
        } else {
            &m.kernel.states
        };
        let mut s = spec("home");
        s.policy = SetPolicy::AllowOnly;
        m.backend.ensure_set(&s).unwrap();
        let old = hosts(0xc000_0200, 3);
        m.backend.add(&s, &old).unwrap();
        // More than one XADD call (4,096) and many `ipfw table add` runs (500).
        let new = hosts(0xc612_0000, 5000);
        states.lock().unwrap().clear();
        m.kernel.calls.lock().unwrap().clear();
        let replace = Changes {
            add: new.clone(),
            remove: Vec::new(),
            flush_first: true,
        };
        m.backend.apply(&s, &replace).unwrap();
        let (old, new) = (sorted(&old), sorted(&new));
        let seen: Vec<Vec<Target>> = states
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| n == "home")
            .map(|(_, e)| {
                let mut e = e.clone().expect("the live table always exists");
                e.sort();
                e
            })
            .collect();
        for (i, state) in seen.iter().enumerate() {
            assert!(
                *state == old || *state == new,
                "by command: {by_command}: state {i} of the live table has {} entries, \
                 neither the old 3 nor the new 5,000",
                state.len()
            );
        }
        assert_eq!(seen.last(), Some(&new), "the new content is in");
        assert_eq!(sorted(&m.backend.list(&s).unwrap()), new);
        let temp = replace::temp_table("home");
        assert_eq!(m.backend.tables.count(&temp).unwrap(), None, "{temp} left");
        if !by_command {
            let calls = m.kernel.calls.lock().unwrap();
            assert_eq!(calls.iter().filter(|&&c| c == msg::XSWAP).count(), 1);
        }
    }
}

/// A replace that died between filling the temporary table and swapping
/// left `_banset_swap.NAME` behind with stale entries: the next replace
/// must not swap those in, and removes the table.
#[test]
fn a_temporary_table_left_by_a_crash_is_cleaned_up_by_the_next_replace() {
    for m in [native(), command()] {
        let mut s = spec("f2b");
        s.hook = None;
        m.backend.ensure_set(&s).unwrap();
        let temp = replace::temp_table("f2b");
        assert!(msg::check_name(&temp).is_ok());
        m.backend.tables.create(&temp, 0).unwrap();
        m.backend
            .tables
            .add(&temp, &["203.0.113.9".parse().unwrap()])
            .unwrap();
        let replace = Changes {
            add: entries(&["192.0.2.1", "2001:db8::/64"]),
            remove: Vec::new(),
            flush_first: true,
        };
        m.backend.apply(&s, &replace).unwrap();
        assert_eq!(
            sorted(&m.backend.list(&s).unwrap()),
            sorted(&entries(&["192.0.2.1", "2001:db8::/64"]))
        );
        assert_eq!(
            m.backend.tables.count(&temp).unwrap(),
            None,
            "{temp} removed"
        );
    }
}

/// A swap the kernel refuses (here: the live table was made by hand with
/// a smaller limit than the set's, EFBIG) leaves the live table as it was
/// and no temporary table behind.
#[test]
fn a_refused_swap_leaves_the_live_table_and_no_temporary() {
    let m = native();
    let mut s = spec("f2b");
    s.hook = None;
    m.backend.tables.create("f2b", 1).unwrap();
    m.backend.add(&s, &entries(&["192.0.2.1"])).unwrap();
    let replace = Changes {
        add: entries(&["192.0.2.2", "192.0.2.3"]),
        remove: Vec::new(),
        flush_first: true,
    };
    let e = m.backend.apply(&s, &replace).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::SetFull, "{e}");
    assert_eq!(
        sorted(&m.backend.list(&s).unwrap()),
        sorted(&entries(&["192.0.2.1"]))
    );
    assert_eq!(m.kernel.tables.lock().unwrap().len(), 1);
}
