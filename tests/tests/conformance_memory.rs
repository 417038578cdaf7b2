//! The conformance suite against the in-process kernel model, the baseline
//! every real backend is compared with. Besides the defaults, it runs the
//! weaker kernels the model imitates, so the suite's capability branches are
//! exercised too.

use std::sync::Arc;
use std::time::Duration;

use banset_core::{Capabilities, SystemClock};
use banset_memory::{MemoryBackend, IPSET_MAX_TIMEOUT};
use banset_tests::conformance;

banset_tests::conformance_tests!(|check| {
    check.run(&MemoryBackend::default(), "bt-");
});

fn kernel(caps: Capabilities) -> MemoryBackend {
    MemoryBackend::with_capabilities(Arc::new(SystemClock), caps)
}

#[test]
fn ipset_like_kernel_with_a_timeout_cap() {
    conformance::run_all(
        &kernel(Capabilities {
            max_timeout: Some(IPSET_MAX_TIMEOUT),
            ..MemoryBackend::CAPABILITIES
        }),
        "cap-",
    );
}

#[test]
fn pf_like_kernel_without_timeouts() {
    conformance::run_all(
        &kernel(Capabilities {
            timeouts: false,
            ..MemoryBackend::CAPABILITIES
        }),
        "pf-",
    );
}

#[test]
fn kernel_with_a_short_cap_still_refuses_above_it() {
    conformance::run_all(
        &kernel(Capabilities {
            max_timeout: Some(Duration::from_secs(3600)),
            ..MemoryBackend::CAPABILITIES
        }),
        "short-",
    );
}

/// The shape a kernel backend's test file takes (a namespace per check),
/// kept compiling and running here so the harness and the suite stay
/// composable before the first kernel backend uses them.
#[cfg(target_os = "linux")]
#[test]
fn the_suite_runs_inside_a_network_namespace() {
    use banset_tests::netns;
    if netns::skip_unless_root("the_suite_runs_inside_a_network_namespace") {
        return;
    }
    netns::in_new_netns(|| conformance::run_all(&MemoryBackend::default(), "ns-"));
}
