//! A feed read for one set: the format's reader, then what the set can
//! hold. One path for `banset replace` and library users alike.

use std::io::BufRead;

use super::bounds::MAX_FEED_ENTRIES;
use super::error::FeedError;
use super::rir::{self, Country};
use super::{cidr_list, ranges};
use crate::{SetSpec, Target};

/// How a feed is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format<'a> {
    /// One address or prefix per line ([`cidr_list`]).
    CidrList,
    /// A registry's delegated statistics, the addresses of these
    /// countries ([`rir`]).
    Rir(&'a [Country]),
}

/// One file to read: how it is written, the reader, and its name for
/// errors.
#[derive(Debug)]
pub struct Source<'a, R> {
    /// How it is written.
    pub format: Format<'a>,
    /// Its content.
    pub reader: R,
    /// The file as the user named it.
    pub name: &'a str,
}

/// A feed's content for one set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Feed {
    /// What the set is to hold.
    pub targets: Vec<Target>,
    /// Entries of a family the set does not hold, left out (an IPv4-only
    /// set and a registry file that lists both), counted as read: a list's
    /// lines, a registry file's prefixes.
    pub other_family: usize,
}

/// The content `sources` together give the set `spec` (a country's
/// registry file and a list of the few addresses abroad that must reach
/// the ports too: one allow-only set, since two on a port would let in
/// only sources in both). Merged into the fewest prefixes when the set
/// takes prefixes; for a set of single addresses, the lists as written
/// less duplicates (merging would turn neighbours into a prefix it cannot
/// hold). Entries of a family the set does not hold are left out and
/// counted. The first malformed line of any source fails all of them.
pub fn read_for<'a, R: BufRead>(
    spec: &SetSpec,
    sources: impl IntoIterator<Item = Source<'a, R>>,
) -> Result<Feed, FeedError> {
    let mut targets = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for source in sources {
        names.push(source.name);
        let read = match source.format {
            Format::CidrList => cidr_list::read(source.reader, source.name)?,
            Format::Rir(countries) => rir::parse(source.reader, source.name, countries)?.targets,
        };
        if targets.len() + read.len() > MAX_FEED_ENTRIES {
            return Err(FeedError::file(
                source.name,
                format!("more than {MAX_FEED_ENTRIES} entries in all"),
            ));
        }
        targets.extend(read);
    }
    let read = targets.len();
    targets.retain(|t| spec.families.includes(t.family()));
    let other_family = read - targets.len();
    let targets = if spec.prefixes {
        ranges::merge(&targets).map_err(|e| FeedError::file(&names.join(" + "), e))?
    } else {
        targets.sort_unstable();
        targets.dedup();
        targets
    };
    Ok(Feed {
        targets,
        other_family,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BackendKind, Families, SetName};

    fn spec(families: Families, prefixes: bool) -> SetSpec {
        SetSpec {
            families,
            prefixes,
            ..SetSpec::new(SetName::new("home").unwrap(), BackendKind::Nftables)
        }
    }

    fn read(spec: &SetSpec, text: &str) -> Feed {
        let source = Source {
            format: Format::CidrList,
            reader: text.as_bytes(),
            name: "f",
        };
        read_for(spec, [source]).unwrap()
    }

    fn shown(feed: &Feed) -> Vec<String> {
        feed.targets.iter().map(ToString::to_string).collect()
    }

    const LIST: &str = "192.0.2.1\n192.0.2.0\n192.0.2.1\n2001:db8::1\n";

    #[test]
    fn a_prefix_set_gets_the_merged_list() {
        let feed = read(&spec(Families::Both, true), LIST);
        assert_eq!(shown(&feed), ["192.0.2.0/31", "2001:db8::1"]);
        assert_eq!(feed.other_family, 0);
    }

    #[test]
    fn a_host_set_gets_its_hosts_unmerged_once_each() {
        let feed = read(&spec(Families::Both, false), LIST);
        assert_eq!(shown(&feed), ["192.0.2.0", "192.0.2.1", "2001:db8::1"]);
    }

    #[test]
    fn the_other_family_is_left_out_and_counted() {
        let feed = read(&spec(Families::Inet, true), LIST);
        assert_eq!(
            (shown(&feed), feed.other_family),
            (vec!["192.0.2.0/31".to_string()], 1)
        );
        // Counted as written: three IPv4 lines, one of them twice.
        let feed = read(&spec(Families::Inet6, true), LIST);
        assert_eq!(
            (shown(&feed), feed.other_family),
            (vec!["2001:db8::1".to_string()], 3)
        );
    }

    #[test]
    fn a_registry_file_and_a_list_are_one_merged_content() {
        let text = "2|apnic|1|2|0|0|+1000\n\
                    apnic|JP|ipv4|192.0.2.0|384|0|allocated\n\
                    apnic|JP|ipv6|2001:db8::|32|0|allocated\n";
        let jp = Country::parse_list("JP").unwrap();
        let sources = [
            Source {
                format: Format::Rir(&jp),
                reader: text.as_bytes(),
                name: "d",
            },
            Source {
                format: Format::CidrList,
                reader: "192.0.3.128/25\n198.51.100.7\n".as_bytes(),
                name: "extra",
            },
        ];
        let feed = read_for(&spec(Families::Inet, true), sources).unwrap();
        assert_eq!(shown(&feed), ["192.0.2.0/23", "198.51.100.7"]);
        assert_eq!(feed.other_family, 1);
    }

    #[test]
    fn a_bad_line_in_the_second_source_fails_both() {
        let sources =
            [("ok", "192.0.2.0/24\n"), ("bad", "# x\n192.0.2.0/99\n")].map(|(name, text)| Source {
                format: Format::CidrList,
                reader: text.as_bytes(),
                name,
            });
        let e = read_for(&spec(Families::Both, true), sources).unwrap_err();
        assert_eq!((e.source_name.as_str(), e.line), ("bad", Some(2)));
    }
}
