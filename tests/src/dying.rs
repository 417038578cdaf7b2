//! A backend that kills its process right after a kernel call, for crash
//! tests: the kernel call happened, the engine's ledger commit never does
//! (`kill -9` at the worst moment). Tests run the dying engine in a child
//! process (their own test binary, re-run with an environment variable)
//! and check what the next writer makes of the kernel and ledger it left.

use banset_core::{
    Backend, BackendError, BackendKind, Capabilities, Changes, KernelEntry, SetHealth, SetSpec,
    Target,
};

/// A kernel call that changes members.
#[derive(Clone, Copy, Debug)]
pub enum Call<'a> {
    Apply(&'a Changes),
    Del,
    Flush,
}

/// `inner`, but the process aborts right after a kernel call `dies_after`
/// picks (the call itself must work). Every other call goes through.
#[derive(Debug)]
pub struct DiesAfter<B> {
    pub inner: B,
    pub dies_after: fn(Call<'_>) -> bool,
}

impl<B: Backend> DiesAfter<B> {
    fn done<T>(&self, call: Call<'_>, result: Result<T, BackendError>) -> Result<T, BackendError> {
        let value = result.expect("the kernel call itself must work");
        if (self.dies_after)(call) {
            std::process::abort()
        }
        Ok(value)
    }
}

impl<B: Backend> Backend for DiesAfter<B> {
    fn kind(&self) -> BackendKind {
        self.inner.kind()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn ensure_set(&self, spec: &SetSpec) -> Result<(), BackendError> {
        self.inner.ensure_set(spec)
    }
    fn health(&self, spec: &SetSpec) -> Result<SetHealth, BackendError> {
        self.inner.health(spec)
    }
    fn apply(&self, spec: &SetSpec, changes: &Changes) -> Result<(), BackendError> {
        self.done(Call::Apply(changes), self.inner.apply(spec, changes))
    }
    fn del(&self, spec: &SetSpec, targets: &[Target]) -> Result<(), BackendError> {
        self.done(Call::Del, self.inner.del(spec, targets))
    }
    fn flush(&self, spec: &SetSpec) -> Result<(), BackendError> {
        self.done(Call::Flush, self.inner.flush(spec))
    }
    fn list(&self, spec: &SetSpec) -> Result<Vec<KernelEntry>, BackendError> {
        self.inner.list(spec)
    }
    fn destroy(&self, spec: &SetSpec) -> Result<(), BackendError> {
        self.inner.destroy(spec)
    }
    fn contains(&self, spec: &SetSpec, target: &Target) -> Result<bool, BackendError> {
        self.inner.contains(spec, target)
    }
}
