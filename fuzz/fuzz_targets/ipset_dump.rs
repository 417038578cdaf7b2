//! ipset replies (banset-ipset): LIST dump parts, TYPE answers and the
//! line number in an error, from datagrams as the socket receives them;
//! listed entries become targets as listing makes them, always of the
//! listed set's family.

#![no_main]

use banset_core::Family;
use banset_ipset::listed_target;
use banset_ipset::msg::replies::{error_lineno, parse_list_part, parse_type};
use banset_ipset::msg::{cmd, IpsetMessage, MsgIter, NLMSG_ERROR};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut header = None;
    let mut entries = Vec::new();
    for msg in MsgIter::new(data) {
        let Ok(msg) = msg else { break };
        if msg.ty == NLMSG_ERROR {
            let _ = (msg.error_code(), error_lineno(msg.payload));
        }
        match msg.ipset_cmd() {
            Some(cmd::LIST) => {
                let _ = parse_list_part(&msg, &mut header, &mut entries);
            }
            Some(cmd::TYPE) => {
                let _ = parse_type(&msg);
            }
            _ => {}
        }
    }
    // Listing's own conversion, for each kind of set the entries could
    // have come from: a target, in the set's family, or a refusal.
    for e in &entries {
        for family in [Family::V4, Family::V6] {
            for is_net in [false, true] {
                if let Ok(t) = listed_target(family, is_net, e) {
                    assert_eq!(t.family(), family);
                }
            }
        }
    }
});
