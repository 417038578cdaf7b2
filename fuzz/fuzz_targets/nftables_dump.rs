//! nftables dump replies (banset-nftables): datagrams as the socket
//! receives them, walked and decoded the way listing does, down to the
//! members of a set. The first byte chooses the set: bit 0 IPv6, bit 1
//! an interval set. No panic, no unbounded work (issue 13 item 18), and
//! the members of an interval set come out sorted and disjoint.

#![no_main]

use banset_core::Family;
use banset_nftables::members_of;
use banset_nftables::msg::elements::parse_elements;
use banset_nftables::msg::objects::{parse_chain, parse_rule, parse_set};
use banset_nftables::msg::{msg_type, MsgIter, NftMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, datagram)) = data.split_first() else {
        return;
    };
    let family = if mode & 1 == 0 {
        Family::V4
    } else {
        Family::V6
    };
    let interval = mode & 2 != 0;
    let mut infos = Vec::new();
    for msg in MsgIter::new(datagram) {
        let Ok(msg) = msg else { break };
        let _ = (msg.error_code(), msg.done_code());
        match msg.nft_msg() {
            Some(msg_type::NEWSETELEM) => {
                let _ = parse_elements(&msg, &mut infos);
            }
            Some(msg_type::NEWSET) => {
                let _ = parse_set(&msg);
            }
            Some(msg_type::NEWRULE) => {
                let _ = parse_rule(&msg);
            }
            Some(msg_type::NEWCHAIN) => {
                let _ = parse_chain(&msg);
            }
            _ => {}
        }
    }
    let Ok(members) = members_of(family, interval, &infos) else {
        return;
    };
    for m in &members {
        assert_eq!(m.target.family(), family);
    }
    if interval {
        for pair in members.windows(2) {
            let (a, b) = (pair[0].target, pair[1].target);
            assert!(
                a.last() < b.addr(),
                "{a} and {b} overlap or are out of order"
            );
        }
    }
});
