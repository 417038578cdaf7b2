//! Feeds: address lists published by others, read for `banset replace`.
//!
//! Two formats, each in a module of its own:
//! - [`cidr_list`]: one address or prefix per line, `#` (or `;`) comments;
//! - [`rir`]: the Regional Internet Registries' delegated statistics
//!   (`registry|cc|type|start|value|date|status`), filtered by country.
//!
//! Both read through [`lines`] (every line and the line count bounded),
//! collect at most [`MAX_FEED_ENTRIES`] prefixes, and end in
//! [`ranges::merge`], which merges adjacent and overlapping prefixes into
//! the fewest that cover the same addresses. A feed is downloaded from
//! elsewhere, so it is hostile input: any malformed line fails the whole
//! feed with its file and line, and the caller applies nothing.
//! [`fit`] reads a feed for one set (its families, whether it takes
//! prefixes); [`shrink`] is the guard against a truncated download.

mod bounds;
pub mod cidr_list;
mod error;
pub mod fit;
mod lines;
pub mod ranges;
pub mod rir;
pub mod shrink;

pub use bounds::MAX_FEED_ENTRIES;
pub use error::FeedError;
pub use fit::{read_for, Feed, Format, Source};
