//! The delegated-statistics reader against a fixture in the registries'
//! real layout, with Python's `ipaddress` as the independent oracle of the
//! expected prefixes (`fixtures/delegated-apnic-sample.JP`).

use banset_core::feed::rir::{self, Country};
use banset_core::feed::{cidr_list, FeedError};

const SAMPLE: &str = include_str!("fixtures/delegated-apnic-sample");
const SAMPLE_JP: &str = include_str!("fixtures/delegated-apnic-sample.JP");

fn countries(list: &str) -> Vec<Country> {
    Country::parse_list(list).unwrap()
}

fn read(text: &str, list: &str) -> Result<Vec<String>, FeedError> {
    let feed = rir::parse(text.as_bytes(), "delegated", &countries(list))?;
    Ok(feed.targets.iter().map(ToString::to_string).collect())
}

/// The error of reading `text`, as shown.
fn refused(text: &str) -> String {
    read(text, "JP").unwrap_err().to_string()
}

#[test]
fn golden_jp_from_the_sample_matches_the_oracle() {
    let feed = rir::parse(SAMPLE.as_bytes(), "sample", &countries("jp")).unwrap();
    // 12 IPv4 and 6 IPv6 JP address records (ASNs are not addresses).
    assert_eq!(feed.records, 18);
    let got: Vec<String> = feed.targets.iter().map(ToString::to_string).collect();
    let want = cidr_list::parse(SAMPLE_JP.as_bytes(), "oracle").unwrap();
    let want: Vec<String> = want.iter().map(ToString::to_string).collect();
    assert_eq!(got, want);
    assert_eq!(got.len(), 14);
}

#[test]
fn several_countries_are_one_merged_list() {
    // AU's and CN's first five records alternate and touch: together
    // they are 1.0.0.0-1.0.15.255, one /20.
    let got = read(SAMPLE, "AU,CN").unwrap();
    assert_eq!(got[..2], ["1.0.0.0/20", "1.0.32.0/19"]);
    assert!(got.contains(&"2001:250::/35".to_string()), "{got:?}");
}

#[test]
fn a_truncated_download_is_refused() {
    // Cut after any record: the version line's count no longer matches.
    let cut: String = SAMPLE.lines().take(30).map(|l| format!("{l}\n")).collect();
    assert_eq!(
        refused(&cut),
        "delegated: truncated or damaged: the version line announces 36 records, the file holds 18"
    );
    // Cut in the middle of a line: that line is malformed.
    let mid = &SAMPLE[..SAMPLE.find("1.33.0.0").unwrap() + 4];
    assert_eq!(
        refused(mid),
        "delegated: line 30: \"apnic|JP|ipv4|1.33\": a record has 7 fields \
         (registry|cc|type|start|value|date|status)"
    );
}

#[test]
fn a_summary_that_disagrees_is_refused() {
    let text = "2|apnic|1|2|0|0|+1000\n\
                apnic|*|ipv4|*|2|summary\n\
                apnic|JP|ipv4|192.0.2.0|256|0|allocated\n\
                apnic|JP|ipv6|2001:db8::|32|0|allocated\n";
    assert_eq!(
        refused(text),
        "delegated: truncated or damaged: the ipv4 summary announces 2 records, the file holds 1"
    );
}

#[test]
fn a_file_that_is_no_statistics_file_is_refused() {
    assert_eq!(
        refused("<html><body>503</body></html>\n"),
        "delegated: line 1: \"<html><body>503</body></html>\": not a delegated-statistics file \
         (its first line is the version line, version|registry|serial|records|...)"
    );
    assert_eq!(
        refused("# only comments\n\n"),
        "delegated: empty: not a delegated-statistics file"
    );
}

/// A one-record file whose record is `record`.
fn one(record: &str) -> String {
    format!("# c\n2.3|apnic|1|1|0|0|+1000\n{record}\n")
}

#[test]
fn malformed_records_name_their_line() {
    let cases = [
        (
            "apnic|JP|ipv4|1.2.3|256|0|allocated",
            "\"1.2.3\": not an ipv4 address",
        ),
        (
            "apnic|JP|ipv4|192.0.2.0|0|0|allocated",
            "count must be at least 1",
        ),
        (
            "apnic|JP|ipv4|192.0.2.0|-1|0|allocated",
            "\"-1\": not a count",
        ),
        (
            "apnic|JP|ipv4|255.255.255.0|257|0|allocated",
            "inside the address space",
        ),
        (
            "apnic|JP|ipv4|192.0.2.0|99999999999999999999999|0|allocated",
            "count too large",
        ),
        (
            "apnic|JP|ipv6|2001:db8::1|32|0|allocated",
            "bits set beyond the prefix length",
        ),
        (
            "apnic|JP|ipv6|2001:db8::|129|0|allocated",
            "a prefix length (0-128)",
        ),
        (
            "apnic|JP|ipv6|2001:db8::|+32|0|allocated",
            "a prefix length (0-128)",
        ),
        ("apnic|JP|ipv4|224.0.0.0|256|0|allocated", "multicast"),
        ("apnic|JP|ipv4|192.0.2.0", "a record has 7 fields"),
        (
            "apnic|JP|ipv5|192.0.2.0|256|0|allocated",
            "unknown record type \"ipv5\"",
        ),
    ];
    for (record, reason) in cases {
        let e = refused(&one(record));
        assert!(
            e.starts_with("delegated: line 3: ") && e.contains(reason),
            "{record}: {e}"
        );
    }
}

#[test]
fn other_countries_records_and_other_statuses_are_skipped_unparsed() {
    // The extended format: an opaque id and more; `available` and
    // `reserved` space belongs to no country.
    let text = "2|ripencc|1|4|0|0|+0100\n\
                ripencc|JP|ipv4|192.0.2.0|256|20200101|allocated|abc-123|e-stats\n\
                ripencc||ipv4|198.51.100.0|256||available|\n\
                ripencc|ZZ|ipv4|203.0.113.0|256||reserved|\n\
                ripencc|JP|ipv4|203.0.113.0|256|20200101|reserved|x\n";
    assert_eq!(read(text, "JP").unwrap(), ["192.0.2.0/24"]);
}

#[test]
fn a_country_with_no_address_is_refused_as_a_likely_typo() {
    assert_eq!(
        read(SAMPLE, "JP,UK").unwrap_err().to_string(),
        "delegated: no address delegated to UK"
    );
}

#[test]
fn country_lists_parse_strictly() {
    assert_eq!(countries(" jp, US ,jp").len(), 2);
    assert!(Country::parse_list("JPN").is_err());
    assert!(Country::parse_list("").is_err());
    assert!(Country::parse_list("J1").is_err());
    assert!(Country::parse_list("JP,").is_err());
    let err = Country::parse("日本").unwrap_err();
    assert_eq!(err.text, "日本", "the error carries the input");
    assert!(err.to_string().contains("two-letter"), "{err}");
}

#[test]
fn crlf_files_read_like_lf_files() {
    let crlf = SAMPLE.replace('\n', "\r\n");
    assert_eq!(read(&crlf, "JP").unwrap(), read(SAMPLE, "JP").unwrap());
}
