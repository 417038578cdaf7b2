//! `--dry-run`: the real backend read, nothing written.
//!
//! A dry run must answer "what would this command change here", so it has
//! to see the kernel as it is: reporting against an empty stand-in said
//! every set was missing and that `sync` would re-create everything.
//! [`DryRunBackend`] passes every read (health, list, contains) to the real
//! backend and turns every write into a line of the plan, remembering the
//! sets it would have created so the engine's later steps (list what was
//! just created, fill it) see them as the real kernel would. The engine
//! runs its usual code (one decision, whether dry or not); the ledger side
//! is its transaction, rolled back at the end.

use std::collections::HashSet;
use std::sync::Mutex;

use crate::backend::{
    Backend, BackendError, Capabilities, Changes, ErrorKind, KernelEntry, SetHealth,
};
use crate::set_name::SetName;
use crate::spec::{BackendKind, SetSpec};
use crate::target::Target;

/// Members named in one plan line, at most; the rest are counted.
const SHOWN: usize = 10;

/// The real backend, read-only; see the module documentation.
pub struct DryRunBackend {
    inner: Box<dyn Backend>,
    /// Sets this run would have created (their kernel objects).
    created: Mutex<HashSet<SetName>>,
    /// Sets this run would have destroyed.
    destroyed: Mutex<HashSet<SetName>>,
    plan: Mutex<Vec<String>>,
}

impl DryRunBackend {
    /// Reads `inner`; writes nothing to it.
    pub fn new(inner: Box<dyn Backend>) -> Self {
        DryRunBackend {
            inner,
            created: Mutex::new(HashSet::new()),
            destroyed: Mutex::new(HashSet::new()),
            plan: Mutex::new(Vec::new()),
        }
    }

    /// What the run would have changed in the kernel, one line each,
    /// each starting with "would"; taken, so a second call gets only what
    /// came after.
    pub fn take_plan(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.plan))
    }

    fn say(&self, line: String) {
        lock(&self.plan).push(line);
    }

    fn was_created(&self, set: &SetName) -> bool {
        lock(&self.created).contains(set)
    }

    fn was_destroyed(&self, set: &SetName) -> bool {
        lock(&self.destroyed).contains(set)
    }
}

impl std::fmt::Debug for DryRunBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DryRunBackend")
            .field("kind", &self.inner.kind())
            .field("plan", &*lock(&self.plan))
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `192.0.2.1, 192.0.2.2 and 3 more`.
fn some_of(targets: impl ExactSizeIterator<Item = String>) -> String {
    let n = targets.len();
    let mut shown: Vec<String> = targets.take(SHOWN).collect();
    if n > SHOWN {
        shown.push(format!("and {} more", n - SHOWN));
    }
    shown.join(", ")
}

impl Backend for DryRunBackend {
    fn kind(&self) -> BackendKind {
        self.inner.kind()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn ensure_set(&self, spec: &SetSpec) -> Result<(), BackendError> {
        if self.was_created(&spec.name) {
            return Ok(());
        }
        let health = if self.was_destroyed(&spec.name) {
            SetHealth::Missing
        } else {
            self.inner.health(spec)?
        };
        let what = match health {
            SetHealth::Present => return Ok(()),
            SetHealth::Incomplete => "complete the kernel objects",
            SetHealth::Missing => "create the kernel objects",
        };
        self.say(format!(
            "would {what} of set {} and its blocking rule ({})",
            spec.name,
            self.inner.kind()
        ));
        lock(&self.created).insert(spec.name.clone());
        lock(&self.destroyed).remove(&spec.name);
        Ok(())
    }

    fn health(&self, spec: &SetSpec) -> Result<SetHealth, BackendError> {
        if self.was_created(&spec.name) {
            return Ok(SetHealth::Present);
        }
        if self.was_destroyed(&spec.name) {
            return Ok(SetHealth::Missing);
        }
        self.inner.health(spec)
    }

    fn apply(&self, spec: &SetSpec, changes: &Changes) -> Result<(), BackendError> {
        // As the real kernel would: a set that is not there takes nothing,
        // and the engine's own answer to that (restore it) is planned too.
        if self.health(spec)? == SetHealth::Missing {
            return Err(BackendError::new(
                ErrorKind::NotFound,
                format!("set {}", spec.name),
                "not in the kernel",
            ));
        }
        let set = &spec.name;
        if changes.flush_first {
            self.say(format!("would empty set {set}"));
        }
        if !changes.remove.is_empty() {
            self.say(format!(
                "would remove {} from set {set}: {}",
                changes.remove.len(),
                some_of(changes.remove.iter().map(Target::to_string))
            ));
        }
        if !changes.add.is_empty() {
            let entry = |e: &KernelEntry| match e.timeout {
                Some(t) => format!("{} ({} s)", e.target, t.as_secs()),
                None => e.target.to_string(),
            };
            self.say(format!(
                "would add {} to set {set}: {}",
                changes.add.len(),
                some_of(changes.add.iter().map(entry))
            ));
        }
        Ok(())
    }

    fn list(&self, spec: &SetSpec) -> Result<Vec<KernelEntry>, BackendError> {
        if self.was_destroyed(&spec.name) {
            return Err(BackendError::new(
                ErrorKind::NotFound,
                format!("set {}", spec.name),
                "not in the kernel",
            ));
        }
        match self.inner.list(spec) {
            Err(e) if e.kind() == ErrorKind::NotFound && self.was_created(&spec.name) => {
                Ok(Vec::new())
            }
            other => other,
        }
    }

    fn destroy(&self, spec: &SetSpec) -> Result<(), BackendError> {
        let present =
            self.was_created(&spec.name) || self.inner.health(spec)? != SetHealth::Missing;
        if present && !self.was_destroyed(&spec.name) {
            self.say(format!(
                "would destroy set {} and its blocking rule ({})",
                spec.name,
                self.inner.kind()
            ));
        }
        lock(&self.created).remove(&spec.name);
        lock(&self.destroyed).insert(spec.name.clone());
        Ok(())
    }

    fn change_set(&self, old: &SetSpec, new: &SetSpec) -> Result<(), BackendError> {
        let change = crate::spec_change::SpecChange::between(old, new);
        self.say(format!(
            "would change set {} in place ({}), keeping its bans",
            old.name,
            change.describe_in_place()
        ));
        Ok(())
    }

    fn contains(&self, spec: &SetSpec, target: &Target) -> Result<bool, BackendError> {
        if self.was_destroyed(&spec.name) {
            return Ok(false);
        }
        match self.inner.contains(spec, target) {
            Err(e) if e.kind() == ErrorKind::NotFound && self.was_created(&spec.name) => Ok(false),
            other => other,
        }
    }
}
