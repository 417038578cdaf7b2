//! The guard against a truncated or empty download: a replace that would
//! leave a set much smaller than it is now is refused unless forced, so
//! that an allow-only set cannot lose its members (and its admins their
//! access) to a feed cut short.

/// The default `--max-shrink`: a feed may lose at most half its entries
/// from one replace to the next.
pub const DEFAULT_MAX_SHRINK_PERCENT: u8 = 50;

/// A replace shrinks the set by more than allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the set holds {current} entries and the new list {new}, {shrink}% fewer, \
     more than the {max}% allowed; a truncated download? \
     Check the file, then use --force or a larger --max-shrink"
)]
pub struct Shrank {
    /// Entries the set holds now.
    pub current: usize,
    /// Entries the new list has.
    pub new: usize,
    /// How much smaller, in percent, rounded up (so that it is always
    /// above `max` when refused: 50.1% shows as 51%, not 50%).
    pub shrink: u8,
    /// The largest shrink allowed, in percent.
    pub max: u8,
}

/// Refuses going from `current` entries to `new` when that drops more than
/// `max_percent` of them. A set that is empty now can take any list;
/// `max_percent` 100 allows anything.
pub fn check(current: usize, new: usize, max_percent: u8) -> Result<(), Shrank> {
    if new >= current {
        return Ok(());
    }
    // In u128 so that no count overflows; the quotient is at most 100.
    let lost = (current - new) as u128 * 100;
    let shrink = u8::try_from(lost.div_ceil(current as u128)).unwrap_or(100);
    // Compared exactly (lost / current > max), not on the rounded value.
    if lost > u128::from(max_percent) * current as u128 {
        return Err(Shrank {
            current,
            new,
            shrink,
            max: max_percent,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growing_or_starting_empty_is_always_fine() {
        assert_eq!(check(0, 0, 0), Ok(()));
        assert_eq!(check(0, 5, 0), Ok(()));
        assert_eq!(check(10, 10, 0), Ok(()));
        assert_eq!(check(10, 11, 0), Ok(()));
    }

    #[test]
    fn shrinking_past_the_threshold_is_refused_with_both_sizes() {
        assert_eq!(check(1000, 500, 50), Ok(()));
        let e = check(1000, 499, 50).unwrap_err();
        assert_eq!((e.current, e.new, e.shrink, e.max), (1000, 499, 51, 50));
        let shown = e.to_string();
        assert!(
            shown.contains("holds 1000 entries and the new list 499, 51% fewer"),
            "{shown}"
        );
        assert!(check(1000, 0, 99).is_err());
        assert_eq!(check(1000, 0, 100), Ok(()));
        assert_eq!(check(usize::MAX, 0, 100), Ok(()));
        assert!(check(usize::MAX, 1, 0).is_err());
    }
}
