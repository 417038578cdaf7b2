//! One control-protocol request line (banset-core's `control`): no panic,
//! every refusal is one line, and an accepted request encodes back to a
//! line that parses as the same request.

#![no_main]

use banset_core::control::{error_line, parse_request, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_request(data) {
        Ok(request) => {
            let line = request.to_line();
            assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
            let again: Request = parse_request(line.trim_end().as_bytes())
                .expect("an encoded request parses");
            assert_eq!(again, request);
        }
        Err(e) => {
            let line = error_line(e.id.as_ref(), &e.message);
            assert!(!line[..line.len() - 1].contains('\n'));
        }
    }
});
