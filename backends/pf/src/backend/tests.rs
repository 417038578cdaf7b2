//! The backend against a model of pf: a device that answers the table
//! ioctls the way `pf_table.c` does (reading and writing the very structs
//! the real device would get) and a `pfctl` that keeps rules per anchor.
//! It proves the backend's own logic (checks before sending, chunking,
//! two-pass listing, errno mapping, the rule's life cycle) and runs the
//! conformance suite here; whether FreeBSD's kernel agrees with the model
//! is what the VM tests (`vm-tests/run`) check.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use banset_core::{Hook, PortRange, SetName};
use banset_tests::conformance;

use super::*;
use crate::msg::{
    c_str, PfiocTable, AF_INET, AF_INET6, DIOCRADDADDRS, DIOCRADDTABLES, DIOCRCLRADDRS,
    DIOCRDELADDRS, DIOCRDELTABLES, DIOCRGETADDRS, DIOCRSETADDRS, DIOCRTSTADDRS, PFR_TFLAG_PERSIST,
};
use crate::rule::Outcome;

type Key = (String, String);

/// pf's table code as far as banset uses it.
#[derive(Debug, Default)]
struct ModelDevice {
    tables: Mutex<HashMap<Key, Vec<PfrAddr>>>,
    maxcount: usize,
    /// Every request number, in order, for tests that count calls.
    calls: Mutex<Vec<u64>>,
}

fn key_of(t: &PfrTable) -> Key {
    (c_str(&t.anchor), c_str(&t.name))
}

/// `pfr_validate_addr`: a known family, a prefix length within it, no
/// host bits, no feedback going in.
fn valid(a: &PfrAddr) -> bool {
    let bits = match a.af {
        AF_INET => 32,
        AF_INET6 => 128,
        _ => return false,
    };
    if a.net > bits || a.fback != 0 || a.not > 1 {
        return false;
    }
    matches!(a.to_target(), Ok(Some(_)))
}

fn same(a: &PfrAddr, b: &PfrAddr) -> bool {
    a.af == b.af && a.net == b.net && a.addr == b.addr
}

impl ModelDevice {
    fn new(maxcount: usize) -> ModelDevice {
        ModelDevice {
            maxcount,
            ..ModelDevice::default()
        }
    }
}

/// The elements of a request, as the kernel would copy them in.
///
/// # Safety
/// `io.buffer` points at `io.size` elements of `T`, as `PfiocTable::new`
/// makes it.
unsafe fn elements<T>(io: &mut PfiocTable) -> &mut [T] {
    if io.buffer.is_null() || io.size <= 0 {
        return &mut [];
    }
    // SAFETY: see the function's contract.
    unsafe { std::slice::from_raw_parts_mut(io.buffer.cast::<T>(), io.size as usize) }
}

impl Device for ModelDevice {
    fn ioctl(&self, request: u64, io: &mut PfiocTable) -> Result<(), i32> {
        self.calls.lock().unwrap().push(request);
        if io.size < 0 || io.size as usize > self.maxcount {
            return Err(EINVAL);
        }
        let mut tables = self.tables.lock().unwrap();
        if request == DIOCRADDTABLES || request == DIOCRDELTABLES {
            if io.esize as usize != std::mem::size_of::<PfrTable>() {
                return Err(ENODEV);
            }
            // SAFETY: the backend passes PfrTable elements for these.
            let list: &mut [PfrTable] = unsafe { elements(io) };
            let mut n = 0;
            for t in list.iter() {
                if c_str(&t.name).is_empty() || t.flags & !PFR_TFLAG_PERSIST != 0 {
                    return Err(EINVAL);
                }
                if request == DIOCRADDTABLES {
                    if t.flags & PFR_TFLAG_PERSIST == 0 {
                        // A non-persistent table nothing refers to is
                        // destroyed at once: as if never made.
                        continue;
                    }
                    if let std::collections::hash_map::Entry::Vacant(slot) = tables.entry(key_of(t))
                    {
                        slot.insert(Vec::new());
                        n += 1;
                    }
                } else if tables.remove(&key_of(t)).is_some() {
                    n += 1;
                }
            }
            io.nadd = n;
            return Ok(());
        }
        if request != DIOCRCLRADDRS && io.esize as usize != std::mem::size_of::<PfrAddr>() {
            return Err(ENODEV);
        }
        let key = key_of(&io.table);
        let members = tables.get_mut(&key).ok_or(ESRCH)?;
        // SAFETY: the backend passes PfrAddr elements for these.
        let addrs: &mut [PfrAddr] = unsafe { elements(io) };
        if request != DIOCRGETADDRS && addrs.iter().any(|a| !valid(a)) {
            return Err(EINVAL);
        }
        match request {
            DIOCRGETADDRS => {
                if members.len() <= addrs.len() {
                    addrs[..members.len()].copy_from_slice(members);
                }
                io.size = members.len() as i32;
            }
            DIOCRADDADDRS => {
                for a in addrs.iter() {
                    if !members.iter().any(|m| same(m, a)) {
                        members.push(*a);
                    }
                }
            }
            DIOCRDELADDRS => members.retain(|m| !addrs.iter().any(|a| same(m, a))),
            DIOCRSETADDRS => {
                members.clear();
                for a in addrs.iter() {
                    if !members.iter().any(|m| same(m, a)) {
                        members.push(*a);
                    }
                }
            }
            DIOCRCLRADDRS => members.clear(),
            DIOCRTSTADDRS => {
                let mut n = 0;
                for a in addrs.iter() {
                    let t = a.to_target().unwrap().unwrap();
                    if !t.is_host() {
                        return Err(EINVAL);
                    }
                    let hit = members
                        .iter()
                        .filter_map(|m| m.to_target().ok().flatten())
                        .any(|m| m.contains(&t));
                    n += i32::from(hit);
                }
                io.nadd = n;
            }
            _ => return Err(25), // ENOTTY
        }
        Ok(())
    }

    fn request_maxcount(&self) -> usize {
        self.maxcount
    }
}

/// `pfctl` as far as banset runs it: rules per anchor, the main ruleset's
/// text, and the states killed.
#[derive(Debug)]
struct ModelPfctl {
    main: String,
    anchors: Mutex<HashMap<String, String>>,
    killed: Mutex<Vec<String>>,
    runs: std::sync::atomic::AtomicUsize,
}

impl ModelPfctl {
    fn new(main: &str) -> ModelPfctl {
        ModelPfctl {
            main: main.into(),
            anchors: Mutex::new(HashMap::new()),
            killed: Mutex::new(Vec::new()),
            runs: Default::default(),
        }
    }

    fn runs(&self) -> usize {
        self.runs.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn ok(stdout: String) -> Outcome {
    Outcome {
        code: Some(0),
        stdout,
        stderr: String::new(),
    }
}

impl Runner for ModelPfctl {
    fn run(&self, args: &[String], stdin: Option<&str>) -> Result<Outcome, BackendError> {
        self.runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut anchors = self.anchors.lock().unwrap();
        Ok(match a.as_slice() {
            ["-s", "rules"] => ok(self.main.clone()),
            // pf keeps an anchor while it holds a rule or a table; the model
            // knows only the rules, so an anchor without one is unknown.
            ["-a", anchor, "-s", "rules"] => match anchors.get(*anchor) {
                Some(rules) => ok(rules.clone()),
                None => Outcome {
                    code: Some(1),
                    stdout: String::new(),
                    stderr: "pfctl: DIOCGETRULES: Invalid argument".into(),
                },
            },
            ["-q", "-a", anchor, "-f", "-"] => {
                anchors.insert(anchor.to_string(), stdin.unwrap_or_default().to_string());
                ok(String::new())
            }
            ["-q", "-a", anchor, "-F", "rules"] => {
                anchors.remove(*anchor);
                ok(String::new())
            }
            ["-q", "-k", target] => {
                self.killed.lock().unwrap().push(target.to_string());
                ok(String::new())
            }
            _ => Outcome {
                code: Some(1),
                stdout: String::new(),
                stderr: format!("model pfctl: unexpected arguments {a:?}"),
            },
        })
    }
}

const PF_CONF: &str = "anchor \"banset/*\" all\npass all flags S/SA keep state\n";

/// The backend shares its models with the test, which looks inside them.
impl Device for Arc<ModelDevice> {
    fn ioctl(&self, request: u64, io: &mut PfiocTable) -> Result<(), i32> {
        (**self).ioctl(request, io)
    }
    fn request_maxcount(&self) -> usize {
        self.maxcount
    }
}

impl Runner for Arc<ModelPfctl> {
    fn run(&self, args: &[String], stdin: Option<&str>) -> Result<Outcome, BackendError> {
        (**self).run(args, stdin)
    }
}

struct Model {
    backend: PfBackend,
    dev: Arc<ModelDevice>,
    pfctl: Arc<ModelPfctl>,
}

fn model_with(maxcount: usize, pf_conf: &str) -> Model {
    let dev = Arc::new(ModelDevice::new(maxcount));
    let pfctl = Arc::new(ModelPfctl::new(pf_conf));
    Model {
        backend: PfBackend::with_parts(Box::new(dev.clone()), Box::new(pfctl.clone())),
        dev,
        pfctl,
    }
}

fn model(maxcount: usize) -> Model {
    model_with(maxcount, PF_CONF)
}

fn spec(name: &str) -> SetSpec {
    SetSpec::new(SetName::new(name).unwrap(), BackendKind::Pf)
}

fn t(s: &str) -> Target {
    s.parse().unwrap()
}

fn entries(targets: &[&str]) -> Vec<KernelEntry> {
    targets
        .iter()
        .map(|s| KernelEntry {
            target: t(s),
            timeout: None,
        })
        .collect()
}

#[test]
fn conformance_over_the_model() {
    conformance::run_all(&model(65_535).backend, "bt-");
}

#[test]
fn conformance_with_tiny_requests() {
    // Every batch is cut into many requests. A 10,000-member table cannot
    // be listed 7 at a time, on pf as here, so that one check is left out.
    let m = model(7);
    for check in conformance::CHECKS {
        if check.name != "batch_of_ten_thousand" {
            check.run(&m.backend, "tiny-");
        }
    }
}

#[test]
fn one_table_holds_both_families_in_the_sets_anchor() {
    let m = model(65_535);
    let (b, s) = (&m.backend, spec("f2b"));
    b.ensure_set(&s).unwrap();
    b.add(&s, &entries(&["192.0.2.1", "2001:db8::1"])).unwrap();
    let tables = m.dev.tables.lock().unwrap();
    let members = &tables[&("banset/f2b".to_string(), "f2b".to_string())];
    let afs: Vec<u8> = members.iter().map(|m| m.af).collect();
    assert_eq!(afs, [AF_INET, AF_INET6]);
}

#[test]
fn the_rule_is_loaded_once_into_the_sets_anchor() {
    let m = model(65_535);
    let (b, pfctl) = (&m.backend, &m.pfctl);
    let mut s = spec("smtp");
    s.hook = Some(Hook {
        ports: PortRange::parse_list("25,465").unwrap(),
        ..Hook::default()
    });
    assert_eq!(b.health(&s).unwrap(), SetHealth::Missing);
    b.ensure_set(&s).unwrap();
    b.ensure_set(&s).unwrap();
    assert_eq!(b.health(&s).unwrap(), SetHealth::Present);
    assert_eq!(
        pfctl.anchors.lock().unwrap()["banset/smtp"],
        "block drop in quick proto tcp from <smtp> to any port { 25 465 }\n"
    );
    // A rule deleted behind banset's back: incomplete once the rule is
    // looked at again, and ensure_set loads it again without touching the
    // members.
    b.add(&s, &entries(&["192.0.2.9"])).unwrap();
    pfctl.anchors.lock().unwrap().clear();
    assert_eq!(
        b.health(&s).unwrap(),
        SetHealth::Present,
        "a rule seen moments ago is trusted for RuleSightings::RECHECK"
    );
    b.rules_seen.clear();
    assert_eq!(b.health(&s).unwrap(), SetHealth::Incomplete);
    b.ensure_set(&s).unwrap();
    assert_eq!(b.health(&s).unwrap(), SetHealth::Present);
    assert_eq!(b.list(&s).unwrap().len(), 1);
    b.destroy(&s).unwrap();
    assert!(pfctl.anchors.lock().unwrap().is_empty());
    assert_eq!(b.health(&s).unwrap(), SetHealth::Missing);
}

#[test]
fn health_every_second_costs_an_ioctl_not_two_pfctl_runs() {
    let m = model(65_535);
    let s = spec("often");
    m.backend.ensure_set(&s).unwrap();
    assert_eq!(m.backend.health(&s).unwrap(), SetHealth::Present);
    let runs = m.pfctl.runs();
    for _ in 0..10 {
        assert_eq!(m.backend.health(&s).unwrap(), SetHealth::Present);
    }
    assert_eq!(
        m.pfctl.runs(),
        runs,
        "no pfctl run while the rule is trusted"
    );
    // `pfctl -F all`, a reboot: the table is gone, noticed at once.
    m.dev.tables.lock().unwrap().clear();
    m.pfctl.anchors.lock().unwrap().clear();
    assert_eq!(m.backend.health(&s).unwrap(), SetHealth::Missing);
}

#[test]
fn without_the_pf_conf_anchor_line_nothing_is_created() {
    let m = model_with(65_535, "pass all\n");
    let b = &m.backend;
    let s = spec("f2b");
    let e = b.ensure_set(&s).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.detail().contains("anchor \"banset/*\""), "{e}");
    assert!(m.dev.tables.lock().unwrap().is_empty());
    // A set without a hook is the admin's to wire up: no check.
    let mut bare = spec("bare");
    bare.hook = None;
    b.ensure_set(&bare).unwrap();
    assert_eq!(b.health(&bare).unwrap(), SetHealth::Present);
}

#[test]
fn large_batches_are_cut_at_request_maxcount() {
    let m = model(100);
    let (b, s) = (&m.backend, spec("bulk"));
    b.ensure_set(&s).unwrap();
    let many: Vec<KernelEntry> = (0..250u32)
        .map(|i| KernelEntry {
            target: Target::host(std::net::Ipv4Addr::from(0xc612_0000 + i).into()).unwrap(),
            timeout: None,
        })
        .collect();
    m.dev.calls.lock().unwrap().clear();
    b.add(&s, &many).unwrap();
    let adds = m
        .dev
        .calls
        .lock()
        .unwrap()
        .iter()
        .filter(|&&r| r == DIOCRADDADDRS)
        .count();
    assert_eq!(adds, 3, "250 entries in requests of at most 100");
    // Listing 250 needs more than one request may carry.
    let e = b.list(&s).unwrap_err();
    assert!(e.detail().contains("net.pf.request_maxcount=250"), "{e}");
}

#[test]
fn a_ban_can_kill_the_sources_states() {
    let m = model(65_535);
    let b = m.backend;
    let s = spec("kill");
    b.ensure_set(&s).unwrap();
    let banned = entries(&["192.0.2.5", "198.51.100.0/24"]);
    b.add(&s, &banned).unwrap();
    for entry in &banned {
        b.kill_states(&entry.target).unwrap();
    }
    assert_eq!(
        *m.pfctl.killed.lock().unwrap(),
        ["192.0.2.5", "198.51.100.0/24"]
    );
    assert!(b.capabilities().kills_states && b.capabilities().mixed_families);
}

#[test]
fn errnos_map_by_number() {
    assert_eq!(pf_error(ESRCH, "x").kind(), ErrorKind::NotFound);
    assert_eq!(pf_error(ENOMEM, "x").kind(), ErrorKind::SetFull);
    assert!(pf_error(ENOMEM, "x").detail().contains("table-entries"));
    assert_eq!(pf_error(EPERM, "x").kind(), ErrorKind::Permission);
    assert_eq!(pf_error(EINVAL, "x").kind(), ErrorKind::Invalid);
    assert!(pf_error(ENODEV, "x").detail().contains("pfr_addr"));
}

#[test]
fn off_freebsd_pf_is_unsupported() {
    if cfg!(target_os = "freebsd") {
        return;
    }
    assert_eq!(
        PfBackend::open().unwrap_err().kind(),
        ErrorKind::Unsupported
    );
}

#[test]
fn a_changed_rule_replaces_the_anchors_rules_and_the_table_stays() {
    let m = model(65_535);
    let old = spec("f2b");
    m.backend.ensure_set(&old).unwrap();
    m.backend
        .add(&old, &entries(&["192.0.2.1", "2001:db8::1"]))
        .unwrap();
    let mut new = old.clone();
    new.hook = Some(Hook {
        ports: PortRange::parse_list("22,2222").unwrap(),
        protocol: None,
        block: banset_core::BlockType::Reject,
        permanent: false,
    });
    new.max_elements = Some(10);
    m.backend.change_set(&old, &new).unwrap();
    let anchors = m.pfctl.anchors.lock().unwrap().clone();
    assert_eq!(
        anchors["banset/f2b"],
        "block return in quick proto tcp from <f2b> to any port { 22 2222 }\n"
    );
    drop(anchors);
    assert_eq!(m.backend.list(&new).unwrap().len(), 2, "every member kept");
    assert_eq!(m.backend.health(&new).unwrap(), SetHealth::Present);
    let mut unhooked = new.clone();
    unhooked.hook = None;
    m.backend.change_set(&new, &unhooked).unwrap();
    assert!(!m.pfctl.anchors.lock().unwrap().contains_key("banset/f2b"));
    assert_eq!(m.backend.list(&unhooked).unwrap().len(), 2);
}
