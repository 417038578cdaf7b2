//! Network namespaces for kernel tests: a test that creates nftables tables
//! or ipsets does so in a namespace of its own, so it can neither break the
//! host's firewall nor see another test's objects, and everything it made
//! disappears with the namespace, even when the test panics.
//!
//! Two kinds:
//! - [`in_new_netns`]: an anonymous namespace for one closure. `unshare`
//!   moves only the calling thread, so the closure runs on a fresh thread
//!   that ends with it; the test thread never leaves the host namespace.
//!   Netlink sockets opened by the closure, and processes it spawns (`nft`,
//!   `ipset` as oracles), live in the new namespace.
//! - [`VethPair`]: two named namespaces (`ip netns`) joined by a veth pair,
//!   for packet tests that prove a ban really drops traffic. Addresses are
//!   private (10.199.0.0/24, fd00:b5e7::/64) and exist only inside the two
//!   namespaces; the host never gets an interface, address or route.
//!
//! Everything here needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN); tests call
//! [`skip_unless_root`] first and return early when it says so.

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::panic;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Whether the process runs as root, which the kernel tests need.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Returns true, after saying so on stderr, when `test` must be skipped for
/// lack of root; use as `if skip_unless_root("name") { return; }`. A skip is
/// printed rather than silent so that a CI log shows kernel tests did not
/// run, instead of reporting them as passed.
pub fn skip_unless_root(test: &str) -> bool {
    if is_root() {
        return false;
    }
    eprintln!(
        "{test}: skipped: needs root (CAP_NET_ADMIN) to create network namespaces; \
         run the test binary as root, e.g. through a sudo cargo runner"
    );
    true
}

/// The frame of a kernel test: skips it, saying so, without root (see
/// [`skip_unless_root`]); otherwise runs `f` in a fresh namespace (see
/// [`in_new_netns`]). `test` names it in the skip message.
pub fn kernel_test(test: &str, f: impl FnOnce() + Send) {
    if skip_unless_root(test) {
        return;
    }
    in_new_netns(f);
}

/// Runs `f` in a fresh, empty network namespace whose loopback is up, and
/// returns its result; a panic in `f` resumes on the caller's thread.
///
/// `f` runs on a new thread because `unshare(CLONE_NEWNET)` applies to the
/// calling thread only, and a thread cannot go back to the host namespace
/// without a handle to it. The thread ends with `f`, which drops the last
/// reference, and the kernel removes the namespace and everything in it.
///
/// Panics if the namespace cannot be made: a kernel test that cannot isolate
/// itself must not go on in the host namespace.
pub fn in_new_netns<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    run_on_thread(|| {
        // SAFETY: unshare takes flags only; it changes this thread's
        // namespace, which is the point.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            panic!(
                "unshare(CLONE_NEWNET) failed: {} (needs CAP_NET_ADMIN; \
                 refusing to run a kernel test in the host namespace)",
                io::Error::last_os_error()
            );
        }
        set_link_up("lo").unwrap_or_else(|e| panic!("bringing lo up in a new namespace: {e}"));
        f()
    })
}

/// Runs `f` on a scoped thread and hands back its value or its panic. A
/// thread that changed namespace must not be reused, so it is never a pool
/// thread.
fn run_on_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(value) => value,
        Err(payload) => panic::resume_unwind(payload),
    })
}

/// Sets IFF_UP on an interface of the calling thread's namespace with the
/// classic ioctl, so that a fresh namespace does not depend on `ip` being
/// installed.
fn set_link_up(name: &str) -> io::Result<()> {
    // SAFETY: a plain socket call; the descriptor is owned by `socket` below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    let socket = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: ifreq is plain old data; all zeroes is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= request.ifr_name.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("interface name {name:?} is too long"),
        ));
    }
    for (dst, src) in request.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    // SAFETY: `request` is a valid ifreq with a NUL-terminated name, as both
    // ioctls expect, and it outlives the calls.
    unsafe {
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut request) != 0 {
            return Err(io::Error::last_os_error());
        }
        request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS as _, &request) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// `ip netns add` and `del` set up the shared mount of /run/netns on first
/// use, and two of them racing there can fail; tests run in parallel, so
/// they take turns.
static IP_NETNS_LOCK: Mutex<()> = Mutex::new(());

/// Names are `banset-test-<pid>-<n>-<role>`: unique among parallel tests and
/// test binaries, recognisable in `ip netns list`, and tied to a pid so
/// leftovers of a killed run can be told from namespaces in use.
const NAME_PREFIX: &str = "banset-test-";

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// A named network namespace (`ip netns add`), deleted on drop.
#[derive(Debug)]
pub struct NamedNetns {
    name: String,
}

impl NamedNetns {
    /// Creates a namespace with a unique name ending in `role`, loopback up.
    pub fn create(role: &str) -> io::Result<NamedNetns> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let name = format!("{NAME_PREFIX}{}-{id}-{role}", std::process::id());
        {
            let _turn = IP_NETNS_LOCK.lock().unwrap_or_else(|p| p.into_inner());
            run_checked(Command::new("ip").args(["netns", "add", &name]))?;
        }
        let netns = NamedNetns { name };
        netns.ip(&["link", "set", "lo", "up"])?;
        Ok(netns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `program` inside the namespace (`ip netns exec`),
    /// for oracles such as `nft -j list ruleset`.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// Runs `program args...` inside the namespace and returns its stdout;
    /// a failure carries the command line and its stderr.
    pub fn run(&self, program: &str, args: &[&str]) -> io::Result<String> {
        let output = run_checked(self.command(program).args(args))?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// `ip -n NAME args...`: configures the namespace without entering it.
    pub fn ip(&self, args: &[&str]) -> io::Result<String> {
        let output = run_checked(Command::new("ip").args(["-n", &self.name]).args(args))?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Runs `f` on a thread that has joined the namespace (`setns`), so a
    /// backend, socket or listener made there lives in it. Sockets keep
    /// their namespace after the thread ends, so `f` may return them.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = Path::new("/run/netns").join(&self.name);
        let handle =
            File::open(&path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
        run_on_thread(move || {
            // SAFETY: handle is an open namespace file for the whole call.
            if unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                panic!(
                    "setns into {}: {}",
                    path.display(),
                    io::Error::last_os_error()
                );
            }
            f()
        })
    }
}

impl Drop for NamedNetns {
    /// Deleting the namespace takes its interfaces, addresses, routes and
    /// firewall with it. Runs during unwinding too; a failure is reported,
    /// not raised, since panicking in a drop during a panic aborts.
    fn drop(&mut self) {
        let _turn = IP_NETNS_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = run_checked(Command::new("ip").args(["netns", "del", &self.name])) {
            eprintln!(
                "warning: could not delete network namespace {}: {e}",
                self.name
            );
        }
    }
}

/// Two namespaces joined by a veth pair, for packet tests: a server (where
/// the firewall under test runs) and a client (the address that gets
/// banned). Both are deleted on drop, veth included.
///
/// ```ignore
/// let pair = VethPair::new()?;
/// assert_eq!(pair.probe_tcp(VethPair::SERVER_V4, timeout)?, Reach::Connected);
/// pair.server().enter(|| backend.add(&spec, &[ban(VethPair::CLIENT_V4)]))?;
/// assert_eq!(pair.probe_tcp(VethPair::SERVER_V4, timeout)?, Reach::TimedOut);
/// ```
#[derive(Debug)]
pub struct VethPair {
    server: NamedNetns,
    client: NamedNetns,
}

impl VethPair {
    pub const SERVER_V4: Ipv4Addr = Ipv4Addr::new(10, 199, 0, 1);
    pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(10, 199, 0, 2);
    pub const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xb5e7, 0, 0, 0, 0, 0, 1);
    pub const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xb5e7, 0, 0, 0, 0, 0, 2);
    /// The interface name inside each namespace.
    pub const SERVER_IF: &'static str = "veth-srv";
    pub const CLIENT_IF: &'static str = "veth-cli";
    /// Fixed link addresses (locally administered), so each end's
    /// neighbour entry for the other can be made before any packet flows.
    pub const SERVER_MAC: &'static str = "02:b5:e7:00:00:01";
    pub const CLIENT_MAC: &'static str = "02:b5:e7:00:00:02";

    /// Creates both namespaces and the link, after removing namespaces left
    /// by test processes that no longer exist.
    pub fn new() -> io::Result<VethPair> {
        remove_stale_namespaces();
        // Each namespace is owned as soon as it exists, so an error half-way
        // deletes what was made.
        let server = NamedNetns::create("srv")?;
        let client = NamedNetns::create("cli")?;
        // Made from inside the server namespace with the peer placed straight
        // in the client's: neither end ever exists in the host namespace.
        server.ip(&[
            "link",
            "add",
            Self::SERVER_IF,
            "address",
            Self::SERVER_MAC,
            "type",
            "veth",
            "peer",
            "name",
            Self::CLIENT_IF,
            "address",
            Self::CLIENT_MAC,
            "netns",
            client.name(),
        ])?;
        let ends: [(&NamedNetns, &str, [IpAddr; 2]); 2] = [
            (
                &server,
                Self::SERVER_IF,
                [Self::SERVER_V4.into(), Self::SERVER_V6.into()],
            ),
            (
                &client,
                Self::CLIENT_IF,
                [Self::CLIENT_V4.into(), Self::CLIENT_V6.into()],
            ),
        ];
        for (ns, ifname, [v4, v6]) in &ends {
            ns.ip(&["addr", "add", &format!("{v4}/24"), "dev", ifname])?;
            // nodad: the address is usable at once instead of after duplicate
            // address detection, which would make the first probe flaky.
            ns.ip(&["addr", "add", &format!("{v6}/64"), "dev", ifname, "nodad"])?;
            ns.ip(&["link", "set", ifname, "up"])?;
        }
        // Each end knows the other's link address from the start. A first
        // packet otherwise waits for ARP or neighbour discovery, and one lost
        // solicitation costs the 1 s retransmit: as long as the tests' whole
        // probe timeout, so a loaded machine read "Connected" as "TimedOut".
        for ((ns, ifname, _), (_, _, peer_addrs), peer_mac) in [
            (&ends[0], &ends[1], Self::CLIENT_MAC),
            (&ends[1], &ends[0], Self::SERVER_MAC),
        ] {
            for addr in peer_addrs {
                let addr = addr.to_string();
                ns.ip(&[
                    "neigh",
                    "replace",
                    &addr,
                    "lladdr",
                    peer_mac,
                    "dev",
                    ifname,
                    "nud",
                    "permanent",
                ])?;
            }
        }
        for (ns, ifname, _) in &ends {
            wait_until_operational(ns, ifname)?;
        }
        Ok(VethPair { server, client })
    }

    pub fn server(&self) -> &NamedNetns {
        &self.server
    }

    pub fn client(&self) -> &NamedNetns {
        &self.client
    }

    /// A TCP listener on `addr` (one of the server's) with a free port, in
    /// the server namespace. The kernel completes handshakes for it without
    /// an `accept`, so it needs no thread.
    pub fn listen_tcp(&self, addr: IpAddr) -> io::Result<TcpListener> {
        self.server
            .enter(|| TcpListener::bind(SocketAddr::new(addr, 0)))
    }

    /// Connects from the client namespace to `to`, waiting at most
    /// `timeout`, and says what happened.
    pub fn connect_tcp(&self, to: SocketAddr, timeout: Duration) -> Reach {
        self.client
            .enter(|| Reach::from_result(TcpStream::connect_timeout(&to, timeout).map(drop)))
    }

    /// Connects from the client namespace to `to` with source address
    /// `from`, which must be one of the client's (add more with
    /// `client().ip(&["addr", "add", ...])`): a test can then ban one
    /// client address and check that another one still gets through.
    pub fn connect_tcp_from(&self, from: IpAddr, to: SocketAddr, timeout: Duration) -> Reach {
        self.client
            .enter(|| Reach::from_result(connect_from(from, to, timeout)))
    }

    /// Listens on `server_addr` and connects to it from the client: the
    /// whole packet test in one call.
    pub fn probe_tcp(
        &self,
        server_addr: impl Into<IpAddr>,
        timeout: Duration,
    ) -> io::Result<Reach> {
        let listener = self.listen_tcp(server_addr.into())?;
        Ok(self.connect_tcp(listener.local_addr()?, timeout))
    }
}

/// Waits (at most 5 s) until `ifname` in `ns` is operationally up: the
/// kernel drops what is sent before, and a dropped SYN is only retried
/// after a second.
fn wait_until_operational(ns: &NamedNetns, ifname: &str) -> io::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let shown = ns.ip(&["-o", "link", "show", "dev", ifname])?;
        if shown.contains("state UP") {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(io::Error::other(format!(
                "{ifname} in {} is not up after 5 s: {}",
                ns.name(),
                shown.trim()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The outcome of a TCP connect, which tells a ban's block type apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// The handshake completed: nothing blocks the client.
    Connected,
    /// Refused (RST, or ICMP port unreachable): a `reject` rule, or no
    /// listener.
    Refused,
    /// No answer within the timeout: a `drop` rule.
    TimedOut,
    /// ICMP host or network unreachable, or administratively prohibited.
    Unreachable,
    /// Anything else, with the error.
    Failed(String),
}

impl Reach {
    fn from_result(result: io::Result<()>) -> Reach {
        let e = match result {
            Ok(()) => return Reach::Connected,
            Err(e) => e,
        };
        match (e.kind(), e.raw_os_error()) {
            (io::ErrorKind::ConnectionRefused, _) => Reach::Refused,
            (io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock, _) => Reach::TimedOut,
            (_, Some(libc::EHOSTUNREACH | libc::ENETUNREACH)) => Reach::Unreachable,
            _ => Reach::Failed(e.to_string()),
        }
    }
}

/// A TCP connect bound to source address `from`: std cannot bind before
/// connecting, hence libc. Nonblocking, so the wait is bounded by `timeout`
/// (a dropped SYN is retried for minutes otherwise).
fn connect_from(from: IpAddr, to: SocketAddr, timeout: Duration) -> io::Result<()> {
    fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let len = match addr {
            SocketAddr::V4(a) => {
                // SAFETY: sockaddr_storage is larger than and aligned for
                // sockaddr_in.
                let sin = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = a.port().to_be();
                sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
                std::mem::size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(a) => {
                // SAFETY: as above, for sockaddr_in6.
                let sin6 = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = a.port().to_be();
                sin6.sin6_addr.s6_addr = a.ip().octets();
                std::mem::size_of::<libc::sockaddr_in6>()
            }
        };
        (storage, len as libc::socklen_t)
    }

    let domain = if to.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: a plain socket call; the descriptor is owned right below.
    let fd = unsafe {
        libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    let socket = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let (local, local_len) = sockaddr(SocketAddr::new(from, 0));
    // SAFETY: `local` is a valid socket address of `local_len` bytes.
    if unsafe {
        libc::bind(
            socket.as_raw_fd(),
            (&local as *const libc::sockaddr_storage).cast(),
            local_len,
        )
    } != 0
    {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("bind {from}: {e}")));
    }
    let (remote, remote_len) = sockaddr(to);
    // SAFETY: `remote` is a valid socket address of `remote_len` bytes.
    if unsafe {
        libc::connect(
            socket.as_raw_fd(),
            (&remote as *const libc::sockaddr_storage).cast(),
            remote_len,
        )
    } == 0
    {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EINPROGRESS) {
        return Err(e);
    }
    let mut pfd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `pfd` is one valid pollfd.
    match unsafe { libc::poll(&mut pfd, 1, millis) } {
        0 => return Err(io::Error::from(io::ErrorKind::TimedOut)),
        n if n < 0 => return Err(io::Error::last_os_error()),
        _ => {}
    }
    let mut err: libc::c_int = 0;
    let mut err_len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err` is a valid int of `err_len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut err_len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    match err {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

/// Runs a tool (`nft`, `ipset`, `iptables`) in the calling thread's
/// namespace, as a kernel test's independent oracle, and returns its
/// stdout; panics with the command line and its stderr when it fails.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether a tool succeeds in the calling thread's namespace (a probe such
/// as `nft list table ...` whose failure is an answer, not an error).
pub fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Deletes `banset-test-<pid>-*` namespaces whose process is gone: a test
/// killed by a signal or a timeout never ran its drops.
fn remove_stale_namespaces() {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(NAME_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            let _turn = IP_NETNS_LOCK.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = run_checked(Command::new("ip").args(["netns", "del", &name])) {
                eprintln!("warning: could not delete stale network namespace {name}: {e}");
            }
        }
    }
}

/// Runs a command to completion; a non-zero exit becomes an error naming
/// the command and quoting its stderr.
pub(crate) fn run_checked(command: &mut Command) -> io::Result<Output> {
    let shown = format!("{command:?}");
    let output = command
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("running {shown}: {e}")))?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "{shown} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(output)
}

/// What of the host's network a kernel test could damage, as text, so a
/// test can assert it is the same afterwards: links, addresses, routes and
/// the nftables ruleset of the namespace the calling thread is in.
/// Address lifetimes (which count down under DHCP) are left out.
pub fn host_network_snapshot() -> io::Result<String> {
    let mut snapshot = String::new();
    for args in [
        &["-o", "link", "show"][..],
        &["-o", "addr", "show"],
        &["route", "show", "table", "all"],
        &["-6", "route", "show", "table", "all"],
    ] {
        let output = run_checked(Command::new("ip").args(args))?;
        snapshot.push_str(&format!("## ip {}\n", args.join(" ")));
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            snapshot.push_str(&without_lifetimes(line));
            snapshot.push('\n');
        }
    }
    if let Ok(output) = Command::new("nft").args(["list", "ruleset"]).output() {
        snapshot.push_str("## nft list ruleset\n");
        snapshot.push_str(&String::from_utf8_lossy(&output.stdout));
        snapshot.push_str(&String::from_utf8_lossy(&output.stderr));
    }
    Ok(snapshot)
}

fn without_lifetimes(line: &str) -> String {
    let mut words = line.split_whitespace();
    let mut kept = Vec::new();
    while let Some(word) = words.next() {
        match word {
            "valid_lft" | "preferred_lft" | "expires" => {
                words.next();
            }
            _ => kept.push(word),
        }
    }
    kept.join(" ")
}

#[cfg(test)]
mod tests;
