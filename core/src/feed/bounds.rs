//! The bound on what one feed may produce, shared by every reader. A
//! module of its own so that the readers import it from a sibling, never
//! from `feed` (which re-exports them).

/// The most prefixes one feed may produce, before and after merging.
/// Every delegated-statistics file of the five registries together holds
/// about 300,000 address records; a country is a small part of that.
pub const MAX_FEED_ENTRIES: usize = 1_000_000;
