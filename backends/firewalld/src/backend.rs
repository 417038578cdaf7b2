//! `FirewalldBackend`: the [`Backend`] trait as kernel ipsets (through the
//! ipset backend) plus firewalld direct rules (over D-Bus).

use banset_core::{
    Backend, BackendError, BackendKind, Capabilities, Changes, ErrorKind, KernelEntry, SetHealth,
    SetPolicy, SetSpec, Target,
};
use banset_ipset::IpsetBackend;

use crate::msg::{self, DirectRule};
use crate::sys::{Bus, CallError, Client};

mod change;

/// banset's firewalld backend. Members live in kernel ipsets made and
/// filled by [`IpsetBackend`] over netlink, so a ban never waits for
/// firewalld; firewalld holds the direct rule that makes each set block,
/// runtime and, for a hook with `permanent`, in its saved configuration.
///
/// A `firewall-cmd --reload` (or a firewalld restart) keeps the ipsets and
/// their entries but drops runtime direct rules; [`Backend::health`] then
/// reports [`SetHealth::Incomplete`] and [`Backend::ensure_set`] puts the
/// rule back, which is what `banset sync` and the daemon's keeper (driven by
/// [`spawn_reload_watcher`](crate::spawn_reload_watcher)) do.
#[derive(Debug)]
pub struct FirewalldBackend {
    ipset: IpsetBackend,
    client: Client,
}

/// Whether a direct-rule call goes to the running firewall or to the saved
/// configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layer {
    Runtime,
    Permanent,
}

impl Layer {
    fn path_and_interface(self) -> (&'static str, &'static str) {
        match self {
            Layer::Runtime => (msg::PATH, msg::DIRECT_INTERFACE),
            Layer::Permanent => (msg::CONFIG_PATH, msg::CONFIG_DIRECT_INTERFACE),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Layer::Runtime => "runtime",
            Layer::Permanent => "permanent",
        }
    }
}

impl FirewalldBackend {
    /// Talks to firewalld on the system bus (`DBUS_SYSTEM_BUS_ADDRESS` is
    /// honoured). Connects on the first call that needs firewalld: adding
    /// and removing bans never do.
    pub fn open() -> Result<FirewalldBackend, BackendError> {
        FirewalldBackend::open_on(Bus::System)
    }

    /// Talks to firewalld on `bus`. The ipset netlink socket is opened now,
    /// in the calling thread's network namespace, which must be
    /// firewalld's.
    pub fn open_on(bus: Bus) -> Result<FirewalldBackend, BackendError> {
        Ok(FirewalldBackend {
            ipset: IpsetBackend::open()?,
            client: Client::new(bus),
        })
    }

    /// Adds the rule; present already is fine.
    fn add_rule(&self, set: &SetSpec, rule: &DirectRule, layer: Layer) -> Result<(), BackendError> {
        let (path, iface) = layer.path_and_interface();
        match self
            .client
            .call::<_, ()>(path, iface, "addRule", &rule.call_args())
        {
            Ok(()) => Ok(()),
            Err(CallError::Refused(e)) if e.code == "ALREADY_ENABLED" => Ok(()),
            Err(e) => Err(e.into_backend(&rule_context("add", set, rule, layer), &rule.shown())),
        }
    }

    /// Removes the rule; absent is fine.
    fn remove_rule(
        &self,
        set: &SetSpec,
        rule: &DirectRule,
        layer: Layer,
    ) -> Result<(), BackendError> {
        let (path, iface) = layer.path_and_interface();
        match self
            .client
            .call::<_, ()>(path, iface, "removeRule", &rule.call_args())
        {
            Ok(()) => Ok(()),
            Err(CallError::Refused(e)) if e.code == "NOT_ENABLED" => Ok(()),
            Err(e) => Err(e.into_backend(&rule_context("remove", set, rule, layer), &rule.shown())),
        }
    }

    fn has_rule(
        &self,
        set: &SetSpec,
        rule: &DirectRule,
        layer: Layer,
    ) -> Result<bool, BackendError> {
        let (path, iface) = layer.path_and_interface();
        self.client
            .call::<_, bool>(path, iface, "queryRule", &rule.call_args())
            .map_err(|e| e.into_backend(&rule_context("look up", set, rule, layer), &rule.shown()))
    }
}

/// `firewalld: add the runtime ipv4 direct rule of set f2b`.
fn rule_context(verb: &str, set: &SetSpec, rule: &DirectRule, layer: Layer) -> String {
    format!(
        "firewalld: {verb} the {} {} direct rule of set {}",
        layer.name(),
        rule.ipv,
        set.name
    )
}

/// The layers a set's rule lives in.
fn layers(spec: &SetSpec) -> &'static [Layer] {
    match &spec.hook {
        Some(h) if h.permanent => &[Layer::Runtime, Layer::Permanent],
        _ => &[Layer::Runtime],
    }
}

/// The spec the ipset backend gets: the same sets, without its own
/// iptables hook (firewalld owns the rule here).
fn kernel_spec(spec: &SetSpec) -> SetSpec {
    SetSpec {
        hook: None,
        ..spec.clone()
    }
}

fn rules_of(spec: &SetSpec) -> Result<Vec<DirectRule>, BackendError> {
    msg::direct_rules(spec).map_err(|why| {
        BackendError::new(
            ErrorKind::Invalid,
            format!("firewalld direct rule of set {}", spec.name),
            why.to_string(),
        )
    })
}

impl Backend for FirewalldBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Firewalld
    }

    fn capabilities(&self) -> Capabilities {
        self.ipset.capabilities()
    }

    /// The kernel sets first, then the rules: a rule naming a missing set
    /// is refused by iptables, and a set without its rule is what `health`
    /// reports as incomplete and the next `ensure_set` completes. Creating
    /// the sets needs no firewalld, so running this before firewalld starts
    /// at boot prepares the sets its permanent rules name (see the crate
    /// docs), and then fails with [`ErrorKind::Unavailable`].
    ///
    /// When a rule cannot be added, the rules added by this call are taken
    /// back and, for a set that is not permanent, so are the kernel sets it
    /// created: a failed `banset create` leaves nothing behind.
    fn ensure_set(&self, spec: &SetSpec) -> Result<(), BackendError> {
        let rules = rules_of(spec)?;
        let ks = kernel_spec(spec);
        let created = !rules.is_empty() && self.ipset.health(&ks)? == SetHealth::Missing;
        self.ipset.ensure_set(&ks)?;
        let mut added: Vec<(&DirectRule, Layer)> = Vec::new();
        for rule in &rules {
            for &layer in layers(spec) {
                if let Err(e) = self.add_rule(spec, rule, layer) {
                    for (rule, layer) in added {
                        let _ = self.remove_rule(spec, rule, layer);
                    }
                    let permanent = spec.hook.as_ref().is_some_and(|h| h.permanent);
                    if created && !permanent {
                        let _ = self.ipset.destroy(&ks);
                    }
                    return Err(e);
                }
                added.push((rule, layer));
            }
        }
        // A rule of the other policy's shape (the set was re-created with
        // the other policy while firewalld kept a permanent rule) goes once
        // the right one is in.
        for rule in &msg::other_policy_rules(spec) {
            for &layer in layers(spec) {
                self.remove_rule(spec, rule, layer)?;
            }
        }
        Ok(())
    }

    fn supports_policy(&self, _policy: SetPolicy) -> bool {
        true
    }

    fn change_set(&self, old: &SetSpec, new: &SetSpec) -> Result<(), BackendError> {
        self.change_in_place(old, new)
    }

    fn health(&self, spec: &SetSpec) -> Result<SetHealth, BackendError> {
        let sets = self.ipset.health(&kernel_spec(spec))?;
        let rules = rules_of(spec)?;
        // Without the sets no rule can name them (iptables refuses it), and
        // firewalld need not be asked: `sync` can then re-create the sets
        // while firewalld is still down.
        if rules.is_empty() || sets == SetHealth::Missing {
            return Ok(sets);
        }
        let mut all = true;
        for rule in &rules {
            for &layer in layers(spec) {
                all &= self.has_rule(spec, rule, layer)?;
            }
        }
        // A rule of the other policy's shape blocks the wrong sources.
        for rule in &msg::other_policy_rules(spec) {
            all &= !self.has_rule(spec, rule, Layer::Runtime)?;
        }
        Ok(if all && sets == SetHealth::Present {
            SetHealth::Present
        } else {
            SetHealth::Incomplete
        })
    }

    fn apply(&self, spec: &SetSpec, changes: &Changes) -> Result<(), BackendError> {
        self.ipset.apply(&kernel_spec(spec), changes)
    }

    fn list(&self, spec: &SetSpec) -> Result<Vec<KernelEntry>, BackendError> {
        self.ipset.list(&kernel_spec(spec))
    }

    /// Rules first (runtime, and the saved one of a permanent hook): the
    /// kernel refuses to destroy a set a rule still names.
    fn destroy(&self, spec: &SetSpec) -> Result<(), BackendError> {
        // A hook that no longer builds cannot have a rule; a rule of
        // either policy's shape names the sets.
        let mut rules = msg::direct_rules(spec).unwrap_or_default();
        rules.extend(msg::other_policy_rules(spec));
        for rule in &rules {
            for &layer in layers(spec) {
                self.remove_rule(spec, rule, layer)?;
            }
        }
        self.ipset.destroy(&kernel_spec(spec))
    }

    fn contains(&self, spec: &SetSpec, target: &Target) -> Result<bool, BackendError> {
        self.ipset.contains(&kernel_spec(spec), target)
    }
}
