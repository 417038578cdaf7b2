//! The control protocol (docs/control-protocol.md): one JSON object a line,
//! each request answered by one reply line, in order. This module is pure:
//! it turns a line into a validated [`Request`] (or the one-line error the
//! server sends back) and values back into lines. The daemon's socket,
//! `banset control --stdio` and the client all use it, and the fuzz target
//! `control_request` feeds it arbitrary bytes.
//!
//! Parsing is strict so that a request means one thing: unknown fields,
//! wrong types, bad targets and a version other than [`VERSION`] are
//! refused, naming the input, before anything is done.

use serde_json::{Map, Value};

use crate::{SetName, Target, Timeout};

/// The protocol version this build speaks.
pub const VERSION: u64 = 1;

/// Longest request line, in bytes, without its newline. A longer line gets
/// an error reply and the connection is closed (the rest of the line cannot
/// be told apart from the next request).
pub const MAX_LINE: usize = 64 * 1024;

/// Longest jail name, reason and `id` string.
const MAX_TEXT: usize = 256;

/// Every op, in the order `hello` lists them.
pub const OPS: &[&str] = &[
    "hello",
    "ban",
    "unban",
    "flush",
    "status",
    "ignore-add",
    "ignore-del",
    "reload",
    "sync",
    "ensure",
];

/// One request: its `id` (echoed in the reply) and what it asks.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// A string or an integer chosen by the client, echoed as it came.
    pub id: Option<Value>,
    /// What to do.
    pub op: Op,
}

/// What a request asks.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// The server's name, version and ops.
    Hello,
    /// Ban targets in a set, or in a jail (its set, bantime and reason).
    Ban(Ban),
    /// Unban targets (or everything) from every set, or from one.
    Unban(Unban),
    /// Unban everything in a set; the set stays.
    Flush {
        /// The set.
        set: SetName,
    },
    /// Every jail's status, or one jail's.
    Status {
        /// The jail; `None` for all.
        jail: Option<String>,
    },
    /// Never ban this prefix from now on (until the daemon stops).
    IgnoreAdd {
        /// The prefix.
        prefix: Target,
    },
    /// Withdraw a prefix `ignore-add` gave.
    IgnoreDel {
        /// The prefix.
        prefix: Target,
    },
    /// Read the configuration again.
    Reload,
    /// Make the kernel match the ledger (one set or all).
    Sync {
        /// The set; `None` for all.
        set: Option<SetName>,
    },
    /// Make sure a set exists and the kernel holds every ban of the ledger.
    Ensure(Ensure),
}

/// Where a ban goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BanInto {
    /// A set, with the request's timeout or the set's.
    Set(SetName),
    /// A jail: its set and bantime.
    Jail(String),
}

/// `ban`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    /// The set or jail.
    pub into: BanInto,
    /// What to ban (at least one), each with its own timeout and start
    /// when given (a batch restoring bans that began at different times).
    pub targets: Vec<BanTarget>,
    /// Ban length; `None` is the set's (or jail's).
    pub timeout: Option<Timeout>,
    /// When the ban started (Unix seconds): it ends at `since + timeout`.
    pub since: Option<i64>,
    /// Recorded with the ban.
    pub reason: Option<String>,
}

/// One target of a `ban`: a string on the wire, or
/// `{"target", "timeout"?, "since"?}` overriding the request's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BanTarget {
    /// The address or prefix.
    pub target: Target,
    /// Its ban length, over the request's.
    pub timeout: Option<Timeout>,
    /// Its start, over the request's.
    pub since: Option<i64>,
}

impl BanTarget {
    /// A target with the request's timeout and start.
    pub fn new(target: Target) -> BanTarget {
        BanTarget {
            target,
            timeout: None,
            since: None,
        }
    }
}

/// `unban`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unban {
    /// These targets, or everything.
    pub which: Which,
    /// Only this set; `None` is every set.
    pub set: Option<SetName>,
}

/// What `unban` removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Which {
    /// These addresses or prefixes (a prefix also removes what it covers).
    Targets(Vec<Target>),
    /// Every ban.
    All,
}

/// `ensure`: the set, and the options a new set gets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ensure {
    /// The set.
    pub set: Option<SetName>,
    /// The set's default timeout, if it is created.
    pub timeout: Option<Timeout>,
    /// `--backend`.
    pub backend: Option<String>,
    /// `--family`.
    pub family: Option<String>,
    /// `--maxelem`.
    pub maxelem: Option<u32>,
    /// `--ports`.
    pub ports: Option<String>,
    /// `--protocol`.
    pub protocol: Option<String>,
    /// `--blocktype`.
    pub blocktype: Option<String>,
    /// `true` for `--prefixes`, `false` for `--no-prefixes`.
    pub prefixes: Option<bool>,
    /// `false` for `--no-hook`.
    pub hook: Option<bool>,
}

/// A request that cannot be carried out as written: the reply's `error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    /// The request's `id`, when it could be read.
    pub id: Option<Value>,
    /// One line naming the input at fault.
    pub message: String,
    /// The connection must close after the reply (the line was too long).
    pub fatal: bool,
}

/// Parses one request line (without its newline).
pub fn parse_request(line: &[u8]) -> Result<Request, RequestError> {
    let fail = |id: Option<Value>, message: String| RequestError {
        id,
        message,
        fatal: false,
    };
    if line.len() > MAX_LINE {
        return Err(RequestError {
            id: None,
            message: format!("request longer than {MAX_LINE} bytes; closing the connection"),
            fatal: true,
        });
    }
    let value: Value = serde_json::from_slice(line).map_err(|e| {
        fail(
            None,
            format!("request is not JSON: {}", one_line(&e.to_string())),
        )
    })?;
    let Value::Object(mut fields) = value else {
        return Err(fail(
            None,
            "request is not a JSON object (e.g. {\"v\":1,\"op\":\"hello\"})".into(),
        ));
    };
    let id = match fields.remove("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.len() <= MAX_TEXT => Some(Value::String(s)),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(Value::Number(n)),
        Some(_) => {
            return Err(fail(
                None,
                format!("\"id\" must be a string of at most {MAX_TEXT} bytes or an integer"),
            ))
        }
    };
    let fail = |message: String| fail(id.clone(), message);
    match fields.remove("v") {
        Some(v) if v.as_u64() == Some(VERSION) => {}
        Some(v) => {
            return Err(fail(format!(
                "protocol version {} is not supported: this server speaks \"v\":{VERSION}",
                short(&v)
            )))
        }
        None => {
            return Err(fail(format!(
                "missing \"v\": this server speaks \"v\":{VERSION}"
            )))
        }
    }
    let op = match fields.remove("op") {
        Some(Value::String(op)) => op,
        Some(other) => {
            return Err(fail(format!(
                "\"op\" must be a string, not {}",
                short(&other)
            )))
        }
        None => return Err(fail(format!("missing \"op\" (one of {})", OPS.join(", ")))),
    };
    let mut f = Fields { op: &op, fields };
    let op = match op.as_str() {
        "hello" => Op::Hello,
        "ban" => {
            let set = f.set("set").map_err(&fail)?;
            let jail = f.text("jail").map_err(&fail)?;
            let into = match (set, jail) {
                (Some(s), None) => BanInto::Set(s),
                (None, Some(j)) => BanInto::Jail(j),
                _ => return Err(fail("ban: give exactly one of \"set\" and \"jail\"".into())),
            };
            let targets = f.ban_targets().map_err(&fail)?;
            Op::Ban(Ban {
                into,
                targets,
                timeout: f.timeout().map_err(&fail)?,
                since: f.since().map_err(&fail)?,
                reason: f.text("reason").map_err(&fail)?,
            })
        }
        "unban" => {
            let all = f.flag("all").map_err(&fail)?;
            let which = match (all, f.fields.contains_key("targets")) {
                (Some(true), false) => Which::All,
                (None | Some(false), true) => Which::Targets(f.targets().map_err(&fail)?),
                _ => {
                    return Err(fail(
                        "unban: give either \"targets\" or \"all\":true".into(),
                    ))
                }
            };
            Op::Unban(Unban {
                which,
                set: f.set("set").map_err(&fail)?,
            })
        }
        "flush" => Op::Flush {
            set: f
                .set("set")
                .map_err(&fail)?
                .ok_or_else(|| fail("flush: missing \"set\"".into()))?,
        },
        "status" => Op::Status {
            jail: f.text("jail").map_err(&fail)?,
        },
        "ignore-add" | "ignore-del" => {
            let prefix = f
                .target_field("prefix")
                .map_err(&fail)?
                .ok_or_else(|| fail(format!("{op}: missing \"prefix\"")))?;
            if op == "ignore-add" {
                Op::IgnoreAdd { prefix }
            } else {
                Op::IgnoreDel { prefix }
            }
        }
        "reload" => Op::Reload,
        "sync" => Op::Sync {
            set: f.set("set").map_err(&fail)?,
        },
        "ensure" => {
            let set = f.set("set").map_err(&fail)?;
            if set.is_none() {
                return Err(fail("ensure: missing \"set\"".into()));
            }
            Op::Ensure(Ensure {
                set,
                timeout: f.timeout().map_err(&fail)?,
                backend: f.text("backend").map_err(&fail)?,
                family: f.text("family").map_err(&fail)?,
                maxelem: f.maxelem().map_err(&fail)?,
                ports: f.text("ports").map_err(&fail)?,
                protocol: f.text("protocol").map_err(&fail)?,
                blocktype: f.text("blocktype").map_err(&fail)?,
                prefixes: f.flag("prefixes").map_err(&fail)?,
                hook: f.flag("hook").map_err(&fail)?,
            })
        }
        other => {
            return Err(fail(format!(
                "unknown op {} (ops: {})",
                short(&Value::String(other.to_string())),
                OPS.join(", ")
            )))
        }
    };
    if let Some(extra) = f.fields.keys().next() {
        return Err(fail(format!(
            "{}: unknown field {}",
            f.op,
            short(&Value::String(extra.clone()))
        )));
    }
    Ok(Request { id, op })
}

/// The fields of one request, taken one by one; what is left at the end is
/// unknown.
struct Fields<'a> {
    op: &'a str,
    fields: Map<String, Value>,
}

impl Fields<'_> {
    fn text(&mut self, key: &str) -> Result<Option<String>, String> {
        match self.fields.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => {
                if s.is_empty() || s.len() > MAX_TEXT || s.chars().any(char::is_control) {
                    Err(format!(
                        "{}: \"{key}\" must be 1 to {MAX_TEXT} bytes without control characters",
                        self.op
                    ))
                } else {
                    Ok(Some(s))
                }
            }
            Some(other) => Err(format!(
                "{}: \"{key}\" must be a string, not {}",
                self.op,
                short(&other)
            )),
        }
    }

    fn flag(&mut self, key: &str) -> Result<Option<bool>, String> {
        match self.fields.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(format!(
                "{}: \"{key}\" must be true or false, not {}",
                self.op,
                short(&other)
            )),
        }
    }

    fn set(&mut self, key: &str) -> Result<Option<SetName>, String> {
        let op = self.op;
        self.text(key)?
            .map(|s| SetName::new(&s).map_err(|e| format!("{op}: \"{key}\": {e}")))
            .transpose()
    }

    fn target_field(&mut self, key: &str) -> Result<Option<Target>, String> {
        let op = self.op;
        match self.fields.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Target::parse(&s)
                .map(Some)
                .map_err(|e| format!("{op}: \"{key}\": {}", one_line(&e.to_string()))),
            Some(other) => Err(format!(
                "{op}: \"{key}\" must be a string, not {}",
                short(&other)
            )),
        }
    }

    /// `targets` of a `ban`: strings, or objects with their own
    /// `timeout` and `since`.
    fn ban_targets(&mut self) -> Result<Vec<BanTarget>, String> {
        let op = self.op;
        self.list()?
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::Object(fields) => {
                    let at = format!("{op}: targets[{i}]");
                    let mut item = Fields { op: &at, fields };
                    let target = item
                        .target_field("target")?
                        .ok_or_else(|| format!("{at}: missing \"target\""))?;
                    let parsed = BanTarget {
                        target,
                        timeout: item.timeout()?,
                        since: item.since()?,
                    };
                    match item.fields.keys().next() {
                        Some(extra) => Err(format!(
                            "{at}: unknown field {}",
                            short(&Value::String(extra.clone()))
                        )),
                        None => Ok(parsed),
                    }
                }
                other => Ok(BanTarget::new(target_item(op, i, &other)?)),
            })
            .collect()
    }

    fn targets(&mut self) -> Result<Vec<Target>, String> {
        let op = self.op;
        self.list()?
            .iter()
            .enumerate()
            .map(|(i, v)| target_item(op, i, v))
            .collect()
    }

    /// `targets`: a non-empty list.
    fn list(&mut self) -> Result<Vec<Value>, String> {
        let op = self.op;
        match self.fields.remove("targets") {
            Some(Value::Array(list)) if !list.is_empty() => Ok(list),
            Some(Value::Array(_)) => Err(format!("{op}: \"targets\" is empty")),
            Some(other) => Err(format!(
                "{op}: \"targets\" must be a list of addresses or prefixes, not {}",
                short(&other)
            )),
            None => Err(format!("{op}: missing \"targets\"")),
        }
    }

    /// Seconds (`-1` for never) or the text `banset add --timeout` takes.
    fn timeout(&mut self) -> Result<Option<Timeout>, String> {
        let op = self.op;
        let text = match self.fields.remove("timeout") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(s)) => s,
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => {
                return Err(format!(
                    "{op}: \"timeout\" must be seconds or text like \"7d\", not {}",
                    short(&other)
                ))
            }
        };
        Timeout::parse(&text)
            .map(Some)
            .map_err(|e| format!("{op}: \"timeout\": {e}"))
    }

    /// Unix seconds, fractions dropped (fail2ban's `<time>` is a float).
    fn since(&mut self) -> Result<Option<i64>, String> {
        let op = self.op;
        match self.fields.remove("since") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(t) if (0.0..1e12).contains(&t) => Ok(Some(t.floor() as i64)),
                _ => Err(format!("{op}: \"since\" {n} is not a Unix time in seconds")),
            },
            Some(other) => Err(format!(
                "{op}: \"since\" must be a Unix time in seconds, not {}",
                short(&other)
            )),
        }
    }

    fn maxelem(&mut self) -> Result<Option<u32>, String> {
        let op = self.op;
        match self.fields.remove("maxelem") {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) if n > 0 => Ok(Some(n)),
                _ => Err(format!(
                    "{op}: \"maxelem\" must be a positive integer, not {}",
                    short(&v)
                )),
            },
        }
    }
}

/// One string of a `targets` list.
fn target_item(op: &str, i: usize, v: &Value) -> Result<Target, String> {
    match v {
        Value::String(s) => Target::parse(s)
            .map_err(|e| format!("{op}: targets[{i}]: {}", one_line(&e.to_string()))),
        other => Err(format!(
            "{op}: targets[{i}] must be a string, not {}",
            short(other)
        )),
    }
}

/// A value as the error quotes it: at most 60 bytes of its JSON.
fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.len() <= 60 {
        return text;
    }
    let mut end = 57;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// Newlines and other control characters out: a reply is one line.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

impl Request {
    /// A request without an id.
    pub fn new(op: Op) -> Request {
        Request { id: None, op }
    }

    /// The request as one line, newline included; [`parse_request`] reads
    /// it back as the same request.
    pub fn to_line(&self) -> String {
        let mut m = Map::new();
        m.insert("v".into(), VERSION.into());
        if let Some(id) = &self.id {
            m.insert("id".into(), id.clone());
        }
        let name = self.op.name();
        m.insert("op".into(), name.into());
        let mut put = |k: &str, v: Value| {
            m.insert(k.into(), v);
        };
        let targets =
            |t: &[Target]| Value::from(t.iter().map(|t| t.to_string()).collect::<Vec<_>>());
        match &self.op {
            Op::Hello | Op::Reload => {}
            Op::Ban(b) => {
                match &b.into {
                    BanInto::Set(s) => put("set", s.as_str().into()),
                    BanInto::Jail(j) => put("jail", j.as_str().into()),
                }
                let items: Vec<Value> = b
                    .targets
                    .iter()
                    .map(|t| {
                        if t.timeout.is_none() && t.since.is_none() {
                            return t.target.to_string().into();
                        }
                        let mut item = Map::new();
                        item.insert("target".into(), t.target.to_string().into());
                        if let Some(timeout) = t.timeout {
                            item.insert("timeout".into(), timeout_value(timeout));
                        }
                        if let Some(since) = t.since {
                            item.insert("since".into(), since.into());
                        }
                        Value::Object(item)
                    })
                    .collect();
                put("targets", Value::Array(items));
                if let Some(t) = b.timeout {
                    put("timeout", timeout_value(t));
                }
                if let Some(s) = b.since {
                    put("since", s.into());
                }
                if let Some(r) = &b.reason {
                    put("reason", r.as_str().into());
                }
            }
            Op::Unban(u) => {
                match &u.which {
                    Which::Targets(t) => put("targets", targets(t)),
                    Which::All => put("all", true.into()),
                }
                if let Some(s) = &u.set {
                    put("set", s.as_str().into());
                }
            }
            Op::Flush { set } => put("set", set.as_str().into()),
            Op::Status { jail } => {
                if let Some(j) = jail {
                    put("jail", j.as_str().into());
                }
            }
            Op::IgnoreAdd { prefix } | Op::IgnoreDel { prefix } => {
                put("prefix", prefix.to_string().into())
            }
            Op::Sync { set } => {
                if let Some(s) = set {
                    put("set", s.as_str().into());
                }
            }
            Op::Ensure(e) => {
                if let Some(s) = &e.set {
                    put("set", s.as_str().into());
                }
                if let Some(t) = e.timeout {
                    put("timeout", timeout_value(t));
                }
                for (k, v) in [
                    ("backend", &e.backend),
                    ("family", &e.family),
                    ("ports", &e.ports),
                    ("protocol", &e.protocol),
                    ("blocktype", &e.blocktype),
                ] {
                    if let Some(v) = v {
                        put(k, v.as_str().into());
                    }
                }
                if let Some(n) = e.maxelem {
                    put("maxelem", n.into());
                }
                if let Some(b) = e.prefixes {
                    put("prefixes", b.into());
                }
                if let Some(b) = e.hook {
                    put("hook", b.into());
                }
            }
        }
        let mut line = Value::Object(m).to_string();
        line.push('\n');
        line
    }
}

fn timeout_value(t: Timeout) -> Value {
    match t.secs() {
        Some(s) => s.into(),
        None => (-1).into(),
    }
}

impl Op {
    /// The op's name on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Hello => "hello",
            Op::Ban(_) => "ban",
            Op::Unban(_) => "unban",
            Op::Flush { .. } => "flush",
            Op::Status { .. } => "status",
            Op::IgnoreAdd { .. } => "ignore-add",
            Op::IgnoreDel { .. } => "ignore-del",
            Op::Reload => "reload",
            Op::Sync { .. } => "sync",
            Op::Ensure(_) => "ensure",
        }
    }
}

/// A successful reply: `{"v":1,"id":..,"ok":true, ...fields}`, one line
/// with its newline. `fields` must not use the keys `v`, `id`, `ok`.
pub fn ok_line(id: Option<&Value>, fields: Map<String, Value>) -> String {
    let mut m = Map::new();
    m.insert("v".into(), VERSION.into());
    if let Some(id) = id {
        m.insert("id".into(), id.clone());
    }
    m.insert("ok".into(), true.into());
    for (k, v) in fields {
        if !matches!(k.as_str(), "v" | "id" | "ok") {
            m.insert(k, v);
        }
    }
    let mut line = Value::Object(m).to_string();
    line.push('\n');
    line
}

/// A failed request's reply: `{"v":1,"id":..,"ok":false,"error":".."}`.
pub fn error_line(id: Option<&Value>, message: &str) -> String {
    let mut m = Map::new();
    m.insert("v".into(), VERSION.into());
    if let Some(id) = id {
        m.insert("id".into(), id.clone());
    }
    m.insert("ok".into(), false.into());
    m.insert("error".into(), one_line(message).into());
    let mut line = Value::Object(m).to_string();
    line.push('\n');
    line
}

/// A reply as the client reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The request's id.
    pub id: Option<Value>,
    /// `Ok(fields)` or `Err(error)`.
    pub result: Result<Map<String, Value>, String>,
}

/// Why a line from the control socket is not a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// Not JSON at all (the parser's message, on one line).
    #[error("reply is not JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("reply is not a JSON object")]
    NotAnObject,
    /// Another protocol version, or none.
    #[error("reply is not of protocol version {VERSION}")]
    Version,
    /// No boolean `ok` field.
    #[error("reply has no \"ok\"")]
    NoOk,
}

/// Parses a reply line; `Err` says why it is not one.
pub fn parse_reply(line: &[u8]) -> Result<Reply, ReplyError> {
    let value: Value =
        serde_json::from_slice(line).map_err(|e| ReplyError::NotJson(one_line(&e.to_string())))?;
    let Value::Object(mut m) = value else {
        return Err(ReplyError::NotAnObject);
    };
    if m.remove("v").and_then(|v| v.as_u64()) != Some(VERSION) {
        return Err(ReplyError::Version);
    }
    let id = m.remove("id");
    let result = match m.remove("ok") {
        Some(Value::Bool(true)) => Ok(m),
        Some(Value::Bool(false)) => Err(m
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("the server gave no reason")
            .to_string()),
        _ => return Err(ReplyError::NoOk),
    };
    Ok(Reply { id, result })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Request, RequestError> {
        parse_request(s.as_bytes())
    }

    fn err(s: &str) -> String {
        parse(s).unwrap_err().message
    }

    #[test]
    fn every_op_parses_and_encodes_back_to_itself() {
        for line in [
            r#"{"v":1,"op":"hello"}"#,
            r#"{"v":1,"id":7,"op":"ban","jail":"sshd","targets":["192.0.2.1","2001:db8::/64"]}"#,
            r#"{"v":1,"id":"a","op":"ban","set":"f2b-x","targets":["192.0.2.1"],"timeout":"7d","since":1700000000.5,"reason":"fail2ban:x"}"#,
            r#"{"v":1,"op":"ban","set":"f2b-x","targets":["192.0.2.1"],"timeout":-1}"#,
            r#"{"v":1,"op":"ban","set":"f2b-x","targets":[{"target":"192.0.2.1","timeout":600,"since":1700000000},{"target":"192.0.2.2"},"192.0.2.3"],"timeout":60}"#,
            r#"{"v":1,"op":"unban","targets":["192.0.2.0/24"]}"#,
            r#"{"v":1,"op":"unban","all":true,"set":"f2b-x"}"#,
            r#"{"v":1,"op":"flush","set":"f2b-x"}"#,
            r#"{"v":1,"op":"status","jail":"sshd"}"#,
            r#"{"v":1,"op":"status"}"#,
            r#"{"v":1,"op":"ignore-add","prefix":"198.51.100.0/24"}"#,
            r#"{"v":1,"op":"ignore-del","prefix":"198.51.100.7"}"#,
            r#"{"v":1,"op":"reload"}"#,
            r#"{"v":1,"op":"sync","set":"f2b-x"}"#,
            r#"{"v":1,"op":"ensure","set":"f2b-x","timeout":600,"ports":"22","protocol":"tcp","blocktype":"reject","maxelem":65536,"prefixes":false,"hook":true,"backend":"nftables","family":"inet"}"#,
        ] {
            let r = parse(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            let again = r.to_line();
            assert!(again.ends_with('\n') && !again[..again.len() - 1].contains('\n'));
            assert_eq!(parse(again.trim_end()).unwrap(), r, "{line}");
        }
    }

    #[test]
    fn a_bad_request_is_named_in_one_line() {
        assert!(err("{").starts_with("request is not JSON"));
        assert!(err("[1]").contains("not a JSON object"));
        assert!(err(r#"{"op":"hello"}"#).contains("\"v\":1"));
        assert_eq!(
            err(r#"{"v":2,"op":"hello"}"#),
            "protocol version 2 is not supported: this server speaks \"v\":1"
        );
        assert!(err(r#"{"v":1,"op":"explode"}"#).starts_with("unknown op \"explode\""));
        assert_eq!(
            err(r#"{"v":1,"op":"hello","x":1}"#),
            "hello: unknown field \"x\""
        );
        assert!(
            err(r#"{"v":1,"op":"ban","set":"s","jail":"j","targets":["192.0.2.1"]}"#)
                .contains("exactly one")
        );
        assert!(
            err(r#"{"v":1,"op":"ban","set":"s","targets":["192.0.2.1","nope"]}"#)
                .starts_with("ban: targets[1]: ")
        );
        assert!(err(r#"{"v":1,"op":"ban","set":"s","targets":[]}"#).contains("empty"));
        assert_eq!(
            err(r#"{"v":1,"op":"ban","set":"s","targets":[{"target":"192.0.2.1","x":1}]}"#),
            "ban: targets[0]: unknown field \"x\""
        );
        assert!(err(
            r#"{"v":1,"op":"ban","set":"s","targets":[{"target":"192.0.2.1","timeout":0}]}"#
        )
        .starts_with("ban: targets[0]: \"timeout\""));
        assert!(
            err(r#"{"v":1,"op":"unban","targets":[{"target":"192.0.2.1"}]}"#)
                .contains("must be a string")
        );
        assert!(
            err(r#"{"v":1,"op":"ban","set":"s","targets":["192.0.2.1"],"timeout":0}"#)
                .contains("timeout")
        );
        assert!(
            err(r#"{"v":1,"op":"unban","all":true,"targets":["192.0.2.1"]}"#).contains("either")
        );
        assert!(err(r#"{"v":1,"op":"status","jail":"a\nb"}"#).contains("control"));
        assert!(err(r#"{"v":1,"op":"flush"}"#).contains("missing \"set\""));
        for e in [
            err("{\"v\":1,\"op\":\"ban\",\"set\":\"s\",\"targets\":[\"a\nb\"]}"),
            err("\"\n\""),
        ] {
            assert!(!e.contains('\n'), "{e:?}");
        }
    }

    #[test]
    fn the_id_is_echoed_even_when_the_request_is_refused() {
        let e = parse(r#"{"v":1,"id":"x1","op":"nope"}"#).unwrap_err();
        assert_eq!(e.id, Some(Value::from("x1")));
        let line = error_line(e.id.as_ref(), &e.message);
        let reply = parse_reply(line.trim_end().as_bytes()).unwrap();
        assert_eq!(reply.id, Some(Value::from("x1")));
        assert!(reply.result.unwrap_err().starts_with("unknown op"));
        assert!(parse(r#"{"v":1,"id":[1],"op":"hello"}"#).is_err());
    }

    #[test]
    fn a_line_over_the_limit_is_fatal() {
        let long = format!(
            r#"{{"v":1,"op":"status","jail":"{}"}}"#,
            "a".repeat(MAX_LINE)
        );
        let e = parse(&long).unwrap_err();
        assert!(e.fatal, "{e:?}");
        assert!(!parse("{").unwrap_err().fatal);
    }

    /// The fuzz target's property on stable, from mutated valid lines:
    /// never a panic, a refusal is one line, an accepted request encodes
    /// back to itself.
    #[test]
    fn mutated_requests_are_refused_in_one_line_or_round_trip() {
        use proptest::prelude::*;
        let seeds = [
            r#"{"v":1,"id":7,"op":"ban","jail":"sshd","targets":["192.0.2.1","2001:db8::/64"]}"#,
            r#"{"v":1,"op":"ban","set":"f2b-x","targets":["192.0.2.1"],"timeout":"7d","since":1700000000.5,"reason":"r"}"#,
            r#"{"v":1,"op":"unban","all":true,"set":"f2b-x"}"#,
            r#"{"v":1,"op":"ban","set":"b","targets":[{"target":"192.0.2.1","timeout":600,"since":1700000000}]}"#,
            r#"{"v":1,"op":"ensure","set":"f2b-x","timeout":600,"ports":"22","maxelem":65536,"prefixes":false}"#,
            r#"{"v":1,"op":"ignore-add","prefix":"198.51.100.0/24"}"#,
        ];
        let mut runner = proptest::test_runner::TestRunner::default();
        let strategy = (
            0..seeds.len(),
            proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..6),
        );
        runner
            .run(&strategy, |(seed, edits)| {
                let mut bytes = seeds[seed].as_bytes().to_vec();
                for (at, byte, how) in edits {
                    let i = at % (bytes.len() + 1);
                    match how {
                        0 => bytes.insert(i, byte),
                        1 if i < bytes.len() => bytes[i] = byte,
                        _ if i < bytes.len() => {
                            bytes.remove(i);
                        }
                        _ => {}
                    }
                }
                match parse_request(&bytes) {
                    Ok(r) => {
                        let line = r.to_line();
                        prop_assert_eq!(parse_request(line.trim_end().as_bytes()), Ok(r));
                    }
                    Err(e) => {
                        let line = error_line(e.id.as_ref(), &e.message);
                        prop_assert!(!line.trim_end().contains('\n'));
                    }
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn ok_replies_keep_their_own_v_id_ok() {
        let mut f = Map::new();
        f.insert("ok".into(), false.into());
        f.insert("banned".into(), 3.into());
        let line = ok_line(Some(&Value::from(5)), f);
        let r = parse_reply(line.as_bytes()).unwrap();
        assert_eq!(r.id, Some(Value::from(5)));
        assert_eq!(r.result.unwrap().get("banned"), Some(&Value::from(3)));
    }

    #[test]
    fn a_line_that_is_no_reply_says_which_way_it_is_not() {
        let e = |line: &str| parse_reply(line.as_bytes()).unwrap_err();
        assert!(matches!(e("{"), ReplyError::NotJson(_)));
        assert_eq!(e("[1]"), ReplyError::NotAnObject);
        assert_eq!(e(r#"{"v":2,"ok":true}"#), ReplyError::Version);
        assert_eq!(e(r#"{"v":1,"ok":"yes"}"#), ReplyError::NoOk);
        let refused = parse_reply(br#"{"v":1,"ok":false,"error":"no such set"}"#).unwrap();
        assert_eq!(refused.result.unwrap_err(), "no such set");
    }
}
