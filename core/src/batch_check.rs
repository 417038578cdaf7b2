//! Refusals a backend must make before it sends anything, for kernels that
//! would not make them: pf and ipfw tables take overlapping prefixes
//! (longest match wins), have no per-table size bound (pf) and apply a
//! removal and an addition as two calls. banset promises the same answers
//! on every backend (the conformance suite checks them), so these backends
//! check a batch against the members they hold first.
//!
//! Pure: the caller lists the kernel; this decides.

use std::collections::HashSet;

use crate::backend::{BackendError, Changes, ErrorKind};
use crate::overlap::find_prefix_overlap;
use crate::spec::SetSpec;
use crate::target::Target;

/// What a batch check needs to know of the kernel: nothing, the member
/// count, or the members themselves. Listing a large table is the expensive
/// part, so [`needs`] says which is enough for a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    /// The input alone decides.
    Nothing,
    /// Whether the set stays within `max_elements`: only the count.
    Count,
    /// Overlaps, or a count too close to the bound: the members.
    Members,
}

/// Which kernel reading [`check_changes`] needs for `changes`, given the
/// member count when the caller already has it (`None`: not read yet).
pub fn needs(spec: &SetSpec, changes: &Changes, count: Option<usize>) -> Needs {
    if changes.add.is_empty() {
        return Needs::Nothing;
    }
    if !changes.flush_first && changes.add.iter().any(|e| !e.target.is_host()) {
        return Needs::Members;
    }
    let Some(max) = spec.max_elements else {
        return Needs::Nothing;
    };
    let max = max as usize;
    if changes.flush_first {
        return Needs::Nothing;
    }
    match count {
        None => Needs::Count,
        // Even if every addition is new the set stays within its bound.
        Some(n) if n + changes.add.len() <= max => Needs::Nothing,
        Some(_) => Needs::Members,
    }
}

/// Refuses, naming the culprit, what the kernel would take but banset does
/// not: a target outside the spec's families or prefix setting, a prefix
/// overlapping another (a member or one of the batch), more members than
/// `spec.max_elements`. `members` is the set's content before `changes`,
/// `None` when [`needs`] said the input alone decides; `what` names the
/// kernel object for messages (`pf table banset/f2b`).
pub fn check_changes(
    spec: &SetSpec,
    changes: &Changes,
    members: Option<&[Target]>,
    what: &str,
) -> Result<(), BackendError> {
    let invalid =
        |why: String| BackendError::new(ErrorKind::Invalid, format!("add to {what}"), why);
    for entry in &changes.add {
        spec.admits(&entry.target)
            .map_err(|e| invalid(e.to_string()))?;
    }
    let after_removal: HashSet<Target> = match members {
        Some(members) if !changes.flush_first => {
            let removed: HashSet<&Target> = changes.remove.iter().collect();
            members
                .iter()
                .filter(|t| !removed.contains(t))
                .copied()
                .collect()
        }
        _ => HashSet::new(),
    };
    let adding: Vec<Target> = changes.add.iter().map(|e| e.target).collect();
    if let Some(overlap) = find_prefix_overlap(&after_removal, &adding) {
        return Err(overlap.into_error(format!("add to {what}")));
    }
    if let Some(max) = spec.max_elements {
        let new: HashSet<&Target> = changes
            .add
            .iter()
            .map(|e| &e.target)
            .filter(|t| !after_removal.contains(t))
            .collect();
        let after = after_removal.len() + new.len();
        if after > max as usize {
            return Err(BackendError::new(
                ErrorKind::SetFull,
                format!("add to {what}"),
                format!(
                    "set {} is full: it may hold {max} members, holds {} and this would add {} \
                     more; nothing was changed",
                    spec.name,
                    after_removal.len(),
                    new.len()
                ),
            ));
        }
    }
    Ok(())
}

/// [`check_changes`] after reading only what [`needs`] asks for: the
/// member count (`count`) when it may decide alone, the members
/// (`members`) when it does not. The one path pf and ipfw take before they
/// send anything.
pub fn check_with_kernel(
    spec: &SetSpec,
    changes: &Changes,
    what: &str,
    count: impl FnOnce() -> Result<usize, BackendError>,
    members: impl FnOnce() -> Result<Vec<Target>, BackendError>,
) -> Result<(), BackendError> {
    let mut need = needs(spec, changes, None);
    if need == Needs::Count {
        need = needs(spec, changes, Some(count()?));
    }
    let members = match need {
        Needs::Members => Some(members()?),
        Needs::Nothing | Needs::Count => None,
    };
    check_changes(spec, changes, members.as_deref(), what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::KernelEntry;
    use crate::set_name::SetName;
    use crate::spec::{BackendKind, Families};

    fn t(s: &str) -> Target {
        Target::parse(s).unwrap()
    }

    fn add(targets: &[&str]) -> Changes {
        Changes {
            flush_first: false,
            remove: Vec::new(),
            add: targets
                .iter()
                .map(|s| KernelEntry {
                    target: t(s),
                    timeout: None,
                })
                .collect(),
        }
    }

    fn spec() -> SetSpec {
        let mut s = SetSpec::new(SetName::new("f2b").unwrap(), BackendKind::Pf);
        s.max_elements = Some(3);
        s
    }

    #[test]
    fn hosts_below_the_bound_need_nothing_but_the_count() {
        let s = spec();
        let c = add(&["192.0.2.1", "2001:db8::1"]);
        assert_eq!(needs(&s, &c, None), Needs::Count);
        assert_eq!(needs(&s, &c, Some(1)), Needs::Nothing);
        assert_eq!(needs(&s, &c, Some(2)), Needs::Members);
        assert_eq!(needs(&s, &add(&["10.0.0.0/8"]), Some(0)), Needs::Members);
        assert_eq!(needs(&s, &Changes::default(), None), Needs::Nothing);
        let mut unbounded = s.clone();
        unbounded.max_elements = None;
        assert_eq!(needs(&unbounded, &c, None), Needs::Nothing);
    }

    #[test]
    fn overlaps_with_members_and_within_the_batch_are_refused() {
        let s = spec();
        let members = [t("198.51.100.0/24")];
        let e = check_changes(
            &s,
            &add(&["198.51.100.128/25"]),
            Some(&members),
            "pf table x",
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid);
        assert!(e.detail().contains("overlaps 198.51.100.0/24"), "{e}");
        let e = check_changes(&s, &add(&["198.51.0.0/16"]), Some(&members), "x").unwrap_err();
        assert!(e.detail().contains("already in the set"), "{e}");
        let e = check_changes(
            &s,
            &add(&["2001:db8::/48", "2001:db8::/64"]),
            Some(&[]),
            "x",
        )
        .unwrap_err();
        assert!(e.detail().contains("added earlier in this batch"), "{e}");
        // A host inside a prefix, and the same prefix again, are fine.
        check_changes(
            &s,
            &add(&["198.51.100.7", "198.51.100.0/24"]),
            Some(&members),
            "x",
        )
        .unwrap();
        // Removing the prefix in the same batch makes room for a narrower one.
        let mut c = add(&["198.51.100.0/25"]);
        c.remove.push(t("198.51.100.0/24"));
        check_changes(&s, &c, Some(&members), "x").unwrap();
    }

    #[test]
    fn the_kernel_is_read_only_as_far_as_needed() {
        let s = spec();
        let members = || vec![t("192.0.2.1"), t("192.0.2.2")];
        let no_members = || -> Result<Vec<Target>, BackendError> { panic!("listed") };
        // One host into a set of one: the count decides.
        check_with_kernel(&s, &add(&["192.0.2.9"]), "x", || Ok(1), no_members).unwrap();
        // Near the bound: the members decide.
        let e = check_with_kernel(
            &s,
            &add(&["192.0.2.3", "192.0.2.4"]),
            "x",
            || Ok(2),
            || Ok(members()),
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::SetFull);
        // A prefix: the members, without the count.
        let e = check_with_kernel(
            &s,
            &add(&["192.0.2.0/24", "192.0.2.0/25"]),
            "x",
            || panic!("counted"),
            || Ok(members()),
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid);
    }

    #[test]
    fn the_bound_counts_only_new_members() {
        let s = spec();
        let members = [t("192.0.2.1"), t("192.0.2.2")];
        check_changes(&s, &add(&["192.0.2.1", "192.0.2.3"]), Some(&members), "x").unwrap();
        let e =
            check_changes(&s, &add(&["192.0.2.3", "192.0.2.4"]), Some(&members), "x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::SetFull);
        assert!(e.to_string().contains("set f2b is full"), "{e}");
        let mut replace = add(&["192.0.2.3", "192.0.2.4", "192.0.2.5"]);
        replace.flush_first = true;
        check_changes(&s, &replace, None, "x").unwrap();
    }

    #[test]
    fn families_and_prefixes_follow_the_spec() {
        let mut s = spec();
        s.families = Families::Inet;
        s.prefixes = false;
        let e = check_changes(&s, &add(&["2001:db8::1"]), None, "x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid);
        let e = check_changes(&s, &add(&["10.0.0.0/8"]), None, "x").unwrap_err();
        assert!(e.detail().contains("--prefixes"), "{e}");
    }
}
