//! on_ban / on_unban: an admin's command, run by argv (never a shell) with
//! ADDRESS JAIL SET TIMEOUT_SECONDS FAILURES appended, by a few worker
//! threads, each command killed at its timeout. The queue is bounded: a ban
//! storm drops notifications (and says so) rather than forking without end.

use std::process::{Command, Stdio};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::log;

/// Notifications waiting, at most.
const QUEUE: usize = 1024;

pub struct Job {
    pub argv: Vec<String>,
    pub what: &'static str,
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
        match self.tx.try_send(Job { argv, what }) {
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
    let mut child = match Command::new(&job.argv[0])
        .args(&job.argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            log!("{} {}: cannot run: {e}", job.what, job.argv[0]);
            return;
        }
    };
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                if !status.success() {
                    log!("{} {}: {status}", job.what, job.argv[0]);
                }
                return;
            }
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                log!(
                    "{} {}: killed, still running after {} s",
                    job.what,
                    job.argv[0],
                    timeout.as_secs()
                );
                return;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                log!("{} {}: {e}", job.what, job.argv[0]);
                return;
            }
        }
    }
}
