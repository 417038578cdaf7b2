//! The Regional Internet Registries' delegated statistics
//! (`delegated-apnic-latest` and its siblings, "RIR statistics exchange
//! format"), filtered by country:
//!
//! ```text
//! 2|apnic|20261201|61234|19830613|20261130|+1000     version line
//! apnic|*|ipv4|*|45000|summary                        one per type
//! apnic|JP|ipv4|1.0.16.0|4096|20110412|allocated      records
//! apnic|JP|ipv6|2001:200::|35|19990813|allocated
//! ```
//!
//! An IPv4 record's value is an address count, not always a power of two
//! (it becomes the fewest prefixes covering it); an IPv6 record's is a
//! prefix length. Only `allocated` and `assigned` records count as the
//! country's (the extended files also list `available` and `reserved`
//! space). Records of the extended format carry more fields, ignored.
//!
//! A download cut short must not become a shorter list: the version line
//! announces how many records follow and each summary line how many of
//! its type; a file whose counts disagree is refused, and so is a file
//! without a version line (an error page saved in its place).

use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::bounds::MAX_FEED_ENTRIES;
use super::error::quote;
use super::error::FeedError;
use super::lines::Lines;
use super::ranges::{self, Span};
use crate::{Family, Target};

/// An ISO 3166 two-letter country code, upper case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country([u8; 2]);

/// A country code that is not two ASCII letters; shows the text quoted
/// and cut to [`super::error::QUOTE_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid country {}: want a two-letter ISO 3166 code such as JP", quote(.text))]
pub struct InvalidCountry {
    /// The text as given.
    pub text: String,
}

impl Country {
    /// `JP`, `jp`: two ASCII letters.
    pub fn parse(text: &str) -> Result<Country, InvalidCountry> {
        match text.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Ok(Country([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => Err(InvalidCountry {
                text: text.to_string(),
            }),
        }
    }

    /// `JP,US` (spaces around the commas allowed), at least one.
    pub fn parse_list(text: &str) -> Result<Vec<Country>, InvalidCountry> {
        let mut out: Vec<Country> = Vec::new();
        for part in text.split(',') {
            let c = Country::parse(part.trim())?;
            if !out.contains(&c) {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Built from ASCII letters only.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl std::fmt::Display for Country {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a delegated-statistics file gave for the countries asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RirFeed {
    /// The merged prefixes (see [`ranges::merge`]).
    pub targets: Vec<Target>,
    /// The address records that matched, before merging.
    pub records: usize,
}

/// The record counts a file announces and the ones it holds.
#[derive(Default)]
struct Counts {
    announced: Option<u64>,
    seen: u64,
    /// (type, announced, seen) for every summary line.
    summaries: Vec<(String, u64, u64)>,
}

/// The state of one file being read.
struct Reader<'a> {
    countries: &'a [Country],
    counts: Counts,
    spans: Vec<Span>,
    /// Per country asked for: was any address record its?
    found: Vec<bool>,
}

/// The address prefixes delegated to `countries` in the file `reader`
/// holds. Fails on the first malformed line, on counts that disagree with
/// the file's own (a truncated download), and when a country asked for
/// has no address record at all (a typo such as `UK` for `GB`).
pub fn parse(
    reader: impl BufRead,
    source_name: &str,
    countries: &[Country],
) -> Result<RirFeed, FeedError> {
    let mut lines = Lines::new(reader, source_name);
    let mut state = Reader {
        countries,
        counts: Counts::default(),
        spans: Vec::new(),
        found: vec![false; countries.len()],
    };
    while let Some(line) = lines.next_line()? {
        if let Err(reason) = state.line(line.trim()) {
            return Err(FeedError::at(source_name, lines.number(), reason));
        }
    }
    let file_error = |e| FeedError::file(source_name, e);
    check_counts(&state.counts).map_err(file_error)?;
    if let Some((missing, _)) = countries.iter().zip(&state.found).find(|(_, f)| !**f) {
        return Err(file_error(format!("no address delegated to {missing}")));
    }
    let records = state.spans.len();
    let targets = ranges::spans_to_targets(state.spans).map_err(file_error)?;
    Ok(RirFeed { targets, records })
}

impl Reader<'_> {
    fn line(&mut self, line: &str) -> Result<(), String> {
        if line.is_empty() || line.starts_with('#') {
            return Ok(());
        }
        let fields: Vec<&str> = line.split('|').collect();
        if self.counts.announced.is_none() {
            self.counts.announced = Some(version_line(&fields)?);
            return Ok(());
        }
        if fields.len() >= 6 && fields[1] == "*" && fields[5] == "summary" {
            let n = count(fields[4])?;
            self.counts.summaries.push((fields[2].to_string(), n, 0));
            return Ok(());
        }
        if fields.len() < 7 {
            return Err(format!(
                "{}: a record has 7 fields (registry|cc|type|start|value|date|status)",
                quote(line)
            ));
        }
        let kind = fields[2];
        if !matches!(kind, "ipv4" | "ipv6" | "asn") {
            return Err(format!("unknown record type {}", quote(kind)));
        }
        self.counts.seen += 1;
        if let Some(s) = self.counts.summaries.iter_mut().find(|s| s.0 == kind) {
            s.2 += 1;
        }
        let Some(at) = self.countries.iter().position(|c| c.as_str() == fields[1]) else {
            return Ok(());
        };
        if kind == "asn" || !matches!(fields[6], "allocated" | "assigned") {
            return Ok(());
        }
        if self.spans.len() == MAX_FEED_ENTRIES {
            return Err(format!("more than {MAX_FEED_ENTRIES} records"));
        }
        self.spans.push(record_span(kind, fields[3], fields[4])?);
        self.found[at] = true;
        Ok(())
    }
}

/// `2|apnic|20261201|61234|...`: the announced number of records.
fn version_line(fields: &[&str]) -> Result<u64, String> {
    let version = fields[0];
    let is_version =
        !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if !is_version || fields.len() < 4 {
        return Err(format!(
            "{}: not a delegated-statistics file (its first line is the version line, \
             version|registry|serial|records|...)",
            quote(&fields.join("|"))
        ));
    }
    count(fields[3])
}

fn count(text: &str) -> Result<u64, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{}: not a count", quote(text)));
    }
    text.parse()
        .map_err(|_| format!("{}: count too large", quote(text)))
}

fn check_counts(counts: &Counts) -> Result<(), String> {
    let Some(announced) = counts.announced else {
        return Err("empty: not a delegated-statistics file".to_string());
    };
    if announced != counts.seen {
        return Err(format!(
            "truncated or damaged: the version line announces {announced} records, the file holds {}",
            counts.seen
        ));
    }
    for (kind, announced, seen) in &counts.summaries {
        if announced != seen {
            return Err(format!(
                "truncated or damaged: the {kind} summary announces {announced} records, the file holds {seen}"
            ));
        }
    }
    Ok(())
}

/// The addresses one `ipv4` or `ipv6` record delegates.
fn record_span(kind: &str, start: &str, value: &str) -> Result<Span, String> {
    let bad_start = || format!("{}: not an {kind} address", quote(start));
    if kind == "ipv4" {
        let first = u32::from(start.parse::<Ipv4Addr>().map_err(|_| bad_start())?);
        let n = count(value)?;
        let last = u64::from(first) + n;
        if n == 0 || last > 1 << 32 {
            return Err(format!(
                "{start} + {}: an IPv4 record's count must be at least 1 and stay inside the address space",
                quote(value)
            ));
        }
        let span = Span {
            family: Family::V4,
            first: u128::from(first),
            last: u128::from(last - 1),
        };
        // Each piece must be a target banset takes, checked here so that
        // the error names this line.
        for (addr, len) in ranges::span_to_prefixes(span) {
            let addr = ranges::to_addr(Family::V4, addr);
            Target::prefix(addr, len).map_err(|e| format!("{addr}/{len}: {e}"))?;
        }
        return Ok(span);
    }
    let first = u128::from(start.parse::<Ipv6Addr>().map_err(|_| bad_start())?);
    let len = count(value)
        .ok()
        .and_then(|n| u8::try_from(n).ok())
        .filter(|n| *n <= 128)
        .ok_or_else(|| {
            format!(
                "{}: an IPv6 record's value is a prefix length (0-128)",
                quote(value)
            )
        })?;
    let target = Target::prefix(IpAddr::V6(Ipv6Addr::from(first)), len)
        .map_err(|e| format!("{start}/{len}: {e}"))?;
    if ranges::to_u128(target.addr()) != first || target.family() != Family::V6 {
        return Err(format!(
            "{start}/{len}: the start has bits set beyond the prefix length"
        ));
    }
    Ok(Span::of(&target))
}
