//! on_ban / on_unban: an admin's command, run by argv (never a shell) with
//! ADDRESS JAIL SET TIMEOUT_SECONDS FAILURES appended, by a few worker
//! threads, each command killed at its timeout. The queue is bounded: a ban
//! storm drops notifications (and says so) rather than forking without end.
//!
//! fail2ban's mail actions go the same way: a worker runs `whois ADDRESS`
//! (by argv, with the same timeout, its output bounded), renders the mail
//! ([`banset_watch::mail`]) and pipes it to the mail program's stdin.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use banset_core::Target;
use banset_watch::mail::{BanFacts, MailAction, Whois, MAX_WHOIS};

use super::logging::log;

/// Notifications waiting, at most.
const QUEUE: usize = 1024;

pub struct Job {
    pub argv: Vec<String>,
    pub what: &'static str,
    /// A mail to render in the worker (the whois lookup takes seconds,
    /// never on the daemon's loop); `argv` is then empty.
    pub mail: Option<Box<MailJob>>,
}

pub struct MailJob {
    pub action: MailAction,
    pub address: Target,
    pub jail: String,
    pub failures: u32,
    pub lines: Vec<String>,
}

pub struct Notifier {
    tx: SyncSender<Job>,
    dropped: u64,
}

impl Notifier {
    pub fn new(workers: u32, timeout: Duration) -> Notifier {
        let (tx, rx) = sync_channel::<Job>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers.max(1) {
            let rx = rx.clone();
            let _ = std::thread::Builder::new()
                .name(format!("notify {i}"))
                .spawn(move || worker(&rx, timeout));
        }
        Notifier { tx, dropped: 0 }
    }

    /// Queues `command` + `args`; never blocks the daemon.
    pub fn notify(&mut self, what: &'static str, command: &[String], args: [String; 5]) {
        if command.is_empty() {
            return;
        }
        let mut argv = command.to_vec();
        argv.extend(args);
        self.queue(Job {
            argv,
            what,
            mail: None,
        });
    }

    /// Queues one of fail2ban's mails for the ban of `address`.
    pub fn mail(
        &mut self,
        action: &MailAction,
        address: Target,
        jail: &str,
        failures: u32,
        lines: &[String],
    ) {
        self.queue(Job {
            argv: Vec::new(),
            what: "mail",
            mail: Some(Box::new(MailJob {
                action: action.clone(),
                address,
                jail: jail.to_string(),
                failures,
                lines: lines.to_vec(),
            })),
        });
    }

    fn queue(&mut self, job: Job) {
        let what = job.what;
        match self.tx.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped += 1;
                if self.dropped.is_power_of_two() {
                    log!(
                        "{what}: {} notifications dropped, the queue is full ({QUEUE})",
                        self.dropped
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

fn worker(rx: &Mutex<Receiver<Job>>, timeout: Duration) {
    loop {
        let job = match rx.lock() {
            Ok(rx) => match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
            Err(_) => return,
        };
        run(&job, timeout);
    }
}

fn run(job: &Job, timeout: Duration) {
    let (argv, stdin) = match &job.mail {
        None => (job.argv.clone(), None),
        Some(m) => {
            let hostname = hostname();
            let whois = m
                .action
                .whois
                .then(|| whois(&m.address.to_string(), timeout));
            let facts = BanFacts {
                address: m.address,
                jail: &m.jail,
                failures: m.failures,
                hostname: &hostname,
            };
            let (argv, text) = m.action.render(&facts, whois.as_ref(), &m.lines);
            (argv, Some(text))
        }
    };
    let Some(program) = argv.first() else {
        return;
    };
    let mut child = match Command::new(program)
        .args(&argv[1..])
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            log!("{} {program}: cannot run: {e}", job.what);
            return;
        }
    };
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A thread, so a program that never reads cannot hold the worker
        // past the timeout; the kill below ends the write with EPIPE.
        let _ = std::thread::Builder::new()
            .name("notify stdin".into())
            .spawn(move || {
                let _ = pipe.write_all(text.as_bytes());
            });
    }
    wait(&mut child, job.what, program, timeout);
}

/// Waits for `child` at most `timeout`, then kills it; logs a failure.
fn wait(child: &mut Child, what: &str, program: &str, timeout: Duration) {
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                if !status.success() {
                    log!("{what} {program}: {status}");
                }
                return;
            }
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                log!(
                    "{what} {program}: killed, still running after {} s",
                    timeout.as_secs()
                );
                return;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                log!("{what} {program}: {e}");
                return;
            }
        }
    }
}

/// `whois ADDRESS`, found in PATH as fail2ban's action finds it, run by
/// argv; at most [`MAX_WHOIS`] bytes of its output, killed at `timeout`.
/// Its absence is said in the mail, as fail2ban's "missing whois program".
fn whois(address: &str, timeout: Duration) -> Whois {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let Some(program) = std::env::split_paths(&path)
        .map(|d| d.join("whois"))
        .find(|p| p.is_file())
    else {
        return Whois::Missing("missing whois program: whois is not installed".into());
    };
    let mut child = match Command::new(&program)
        .arg(address)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Whois::Missing(format!("whois {}: {e}", program.display())),
    };
    let Some(out) = child.stdout.take() else {
        return Whois::Missing("whois: no output".into());
    };
    // Read on a thread: the wait below kills a whois that hangs, which
    // ends the read.
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.take(MAX_WHOIS as u64 + 1).read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let timed_out = loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => break false,
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break true;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let buf = reader.join().unwrap_or_default();
    let mut text = String::from_utf8_lossy(&buf[..buf.len().min(MAX_WHOIS)]).into_owned();
    if buf.len() > MAX_WHOIS {
        text.push_str(&format!("\n(whois output cut at {MAX_WHOIS} bytes)\n"));
    }
    if timed_out {
        text.push_str(&format!(
            "\n(whois killed, still running after {} s)\n",
            timeout.as_secs()
        ));
    }
    Whois::Output(text)
}

/// This host's name, for fail2ban's `<fq-hostname>`.
fn hostname() -> String {
    crate::sys::hostname().unwrap_or_else(|| "localhost".into())
}
