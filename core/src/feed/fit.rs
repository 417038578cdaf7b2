//! A feed read for one set: the format's reader, then what the set can
//! hold. One path for `banset replace` and library users alike.

use std::io::BufRead;

use super::rir::{self, Country};
use super::{cidr_list, FeedError};
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

/// A feed's content for one set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Feed {
    /// What the set is to hold.
    pub targets: Vec<Target>,
    /// Entries of a family the set does not hold, left out (an IPv4-only
    /// set and a registry file that lists both).
    pub other_family: usize,
}

/// The content `reader` (named `source_name` in errors) gives the set
/// `spec`: merged into the fewest prefixes when the set takes prefixes;
/// for a set of single addresses, the list as written less duplicates
/// (merging would turn neighbours into a prefix it cannot hold). Entries
/// of a family the set does not hold are left out and counted.
pub fn read_for(
    spec: &SetSpec,
    format: Format<'_>,
    reader: impl BufRead,
    source_name: &str,
) -> Result<Feed, FeedError> {
    let targets = match format {
        Format::CidrList if !spec.prefixes => {
            let mut targets = cidr_list::read(reader, source_name)?;
            targets.sort_unstable();
            targets.dedup();
            targets
        }
        Format::CidrList => cidr_list::parse(reader, source_name)?,
        Format::Rir(countries) => rir::parse(reader, source_name, countries)?.targets,
    };
    let read = targets.len();
    let targets: Vec<Target> = targets
        .into_iter()
        .filter(|t| spec.families.includes(t.family()))
        .collect();
    Ok(Feed {
        other_family: read - targets.len(),
        targets,
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

    fn shown(feed: &Feed) -> Vec<String> {
        feed.targets.iter().map(ToString::to_string).collect()
    }

    const LIST: &str = "192.0.2.1\n192.0.2.0\n192.0.2.1\n2001:db8::1\n";

    #[test]
    fn a_prefix_set_gets_the_merged_list() {
        let feed = read_for(
            &spec(Families::Both, true),
            Format::CidrList,
            LIST.as_bytes(),
            "f",
        )
        .unwrap();
        assert_eq!(shown(&feed), ["192.0.2.0/31", "2001:db8::1"]);
        assert_eq!(feed.other_family, 0);
    }

    #[test]
    fn a_host_set_gets_its_hosts_unmerged_once_each() {
        let feed = read_for(
            &spec(Families::Both, false),
            Format::CidrList,
            LIST.as_bytes(),
            "f",
        )
        .unwrap();
        assert_eq!(shown(&feed), ["192.0.2.0", "192.0.2.1", "2001:db8::1"]);
    }

    #[test]
    fn the_other_family_is_left_out_and_counted() {
        let feed = read_for(
            &spec(Families::Inet, true),
            Format::CidrList,
            LIST.as_bytes(),
            "f",
        )
        .unwrap();
        assert_eq!(
            (shown(&feed), feed.other_family),
            (vec!["192.0.2.0/31".to_string()], 1)
        );
        let feed = read_for(
            &spec(Families::Inet6, true),
            Format::CidrList,
            LIST.as_bytes(),
            "f",
        )
        .unwrap();
        assert_eq!(
            (shown(&feed), feed.other_family),
            (vec!["2001:db8::1".to_string()], 1)
        );
    }

    #[test]
    fn a_registry_file_reads_for_its_countries() {
        let text = "2|apnic|1|2|0|0|+1000\n\
                    apnic|JP|ipv4|192.0.2.0|384|0|allocated\n\
                    apnic|JP|ipv6|2001:db8::|32|0|allocated\n";
        let jp = Country::parse_list("JP").unwrap();
        let feed = read_for(
            &spec(Families::Inet, true),
            Format::Rir(&jp),
            text.as_bytes(),
            "d",
        )
        .unwrap();
        assert_eq!(shown(&feed), ["192.0.2.0/24", "192.0.3.0/25"]);
        assert_eq!(feed.other_family, 1);
    }
}
