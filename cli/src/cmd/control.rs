//! `banset control REQUEST` (one request to the daemon, its reply printed)
//! and `banset control --stdio` (the protocol served without a daemon).

use anyhow::Result;
use banset_core::control::{error_line, ok_line, parse_request, Reply};
use serde_json::Value;

use crate::args::{ControlArgs, GlobalArgs};
use crate::control::client::Connection;
use crate::control::{runtime_dir, socket_path};
use crate::errors::{EXIT_KERNEL, EXIT_OK, EXIT_USAGE};

pub fn run(global: GlobalArgs, args: ControlArgs) -> Result<i32> {
    if args.stdio {
        crate::control::local::serve_stdio(global)?;
        return Ok(EXIT_OK);
    }
    let text = args.request.unwrap_or_default();
    // The user's object, with "v":1 added when it has none; checked here
    // first so that a typo is named without bothering the daemon.
    let mut value: Value = serde_json::from_str(&text)
        .map_err(|e| crate::errors::Usage(format!("request {text:?} is not JSON: {e}")))?;
    if let Value::Object(m) = &mut value {
        m.entry("v").or_insert(banset_core::control::VERSION.into());
    }
    let line = value.to_string();
    if let Err(e) = parse_request(line.as_bytes()) {
        print!("{}", error_line(e.id.as_ref(), &e.message));
        return Ok(EXIT_USAGE);
    }
    let dir = runtime_dir(&global);
    let Some(mut conn) = Connection::open(&dir)? else {
        eprintln!(
            "banset: no daemon answers on {} (banset watch; or banset control --stdio)",
            socket_path(&dir).display()
        );
        return Ok(EXIT_KERNEL);
    };
    conn.send_raw(format!("{line}\n").as_bytes())?;
    let reply = conn.read_reply()?;
    print_reply(&reply);
    Ok(if reply.result.is_ok() {
        EXIT_OK
    } else {
        EXIT_USAGE
    })
}

/// The reply as the server sent it.
fn print_reply(reply: &Reply) {
    match &reply.result {
        Ok(fields) => print!("{}", ok_line(reply.id.as_ref(), fields.clone())),
        Err(e) => print!("{}", error_line(reply.id.as_ref(), e)),
    }
}

/// The fields of an ok reply, or the refusal as an error (exit 2).
pub fn fields(reply: Reply) -> Result<serde_json::Map<String, Value>> {
    reply
        .result
        .map_err(|e| anyhow::Error::new(crate::errors::Usage(e)))
}
