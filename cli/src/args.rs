//! The command line as given (clap's first level). `main` turns it into
//! validated values (the second level) before anything is touched.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "banset",
    version,
    about = "Ban IP addresses and prefixes, with timeouts, in the kernel's own firewall sets",
    long_about = "Ban IP addresses and prefixes, with timeouts, in the kernel's own firewall sets.\n\n\
        Every ban is recorded in a ledger, so `banset sync` restores the kernel after a reboot or a firewall reload.\n\n\
        Exit codes: 0 ok, 1 not banned (test), 2 usage or input error, 3 kernel or permission error.",
    after_help = "Example:\n  banset add f2b-postfix 1.2.3.4 --timeout 604800"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Directory of the ledger [default: /var/lib/banset; FreeBSD /var/db/banset]
    #[arg(long, global = true, env = "BANSET_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Configuration file [default: /etc/banset/banset.toml if it exists; FreeBSD /usr/local/etc/banset/banset.toml]
    #[arg(long, global = true, env = "BANSET_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Check and show what would change, but change no kernel set and no ledger row
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// Print nothing but errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Say what was done
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Directory of the daemon's control socket [default: /run/banset; FreeBSD /var/run/banset]
    #[arg(long, global = true, env = "BANSET_RUNTIME_DIR", value_name = "DIR")]
    pub runtime_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a ban set (its kernel sets and blocking rule)
    Create(CreateArgs),
    /// Ban addresses or prefixes (creating the set if needed)
    Add(AddArgs),
    /// Change a set's ports, protocol, block type or maxelem in place, keeping every ban
    #[command(
        name = "set-options",
        long_about = "Change an existing set's blocking rule (--ports, --protocol, --blocktype, \
            --no-hook) or its --maxelem in place: the kernel's rule (and, for a new maxelem, the \
            set) is swapped atomically, every ban keeps the time it has left, and the ledger \
            records the new options. Options not given keep their value.\n\n\
            The backend, family, --no-prefixes and the default timeout are fixed when a set is \
            made; asking to change them fails, saying why, and changes nothing."
    )]
    Change(ChangeArgs),
    /// Unban addresses or prefixes (absent ones are fine)
    #[command(visible_alias = "delete")]
    Del(DelArgs),
    /// Exit 0 if the kernel blocks TARGET in SET, 1 if not
    Test(TestArgs),
    /// List sets and their members, as the kernel holds them
    List(ListArgs),
    /// Unban everything in a set; the set stays
    Flush(FlushArgs),
    /// Remove a set, its rule and its bans
    Destroy(SetArg),
    /// Make the kernel match the ledger (after a reboot or a firewall reload)
    Sync(SyncArgs),
    /// Record the kernel's members in the ledger (after losing or emptying ledger.db)
    #[command(
        long_about = "Record in the ledger what banset's kernel sets hold now, each member with the time \
            the kernel still gives it: the way back after ledger.db was lost, emptied or truncated. \
            Every other command refuses to start an empty ledger while the kernel holds banset sets, \
            because restoring from it would remove their members.\n\n\
            Without SET, every set banset finds in the kernel (nftables: the table inet banset; \
            ipset: sets with banset's iptables rule) is adopted. A set the ledger does not know is \
            recorded with the options given here, as `create` would make it: give the options the \
            set was created with where they differ from the defaults (e.g. --no-prefixes, --ports), \
            or its kernel objects will not match. No member is added or \
            removed in the kernel; members the allowlist refuses are left out of the ledger, and the \
            next `sync` removes them."
    )]
    Adopt(AdoptArgs),
    /// Remove bans that are over (run from cron where the kernel has no timeouts)
    Expire(JsonArg),
    /// Show every set, its counts and its kernel health; with JAIL, the jail as fail2ban-client status JAIL shows it
    Status(StatusArgs),
    /// Unban addresses or prefixes from every set (and, with the daemon, from every jail's failure window)
    Unban(UnbanArgs),
    /// Ban addresses or prefixes in a jail: its set, its bantime
    Ban(BanArgs),
    /// Send one request to the daemon's control socket, or serve the control protocol on standard input (--stdio)
    #[command(
        long_about = "Send one request of the control protocol (docs/control-protocol.md) to the running \
            daemon and print its reply line: banset control '{\"op\":\"status\",\"jail\":\"sshd\"}' \
            (\"v\":1 is added when missing). Exit 0 when the reply is ok, 2 when the request was refused, \
            3 when no daemon answers.\n\n\
            With --stdio, serve the protocol on standard input and output without a daemon: one \
            long-lived process executing each request against the ledger and the kernel, as the \
            daemon would (fail2ban's Python action runs it when no daemon runs)."
    )]
    Control(ControlArgs),
    /// Every ban and unban of a target, kept after the bans end (who, when, why, how long)
    History(HistoryArgs),
    /// Which sets and jails ban a target now, and since when (exit 1: none)
    Find(FindArgs),
    /// Replace the whole content of a set atomically
    Replace(ReplaceArgs),
    /// Run the daemon: watch logs for failures, ban offenders, and keep the kernel true to the ledger
    #[command(
        long_about = "Run the daemon: follow the jails' log files and journal, ban addresses that fail too often, \
            and keep the kernel true to the ledger: restore every set at start, remove bans that are over, \
            re-create sets within a second after a firewall reload or `nft flush ruleset`.\n\n\
            Jails are configured in banset.toml ([jails.NAME]); SIGHUP reloads it without losing counts or bans. \
            With no jails it is the keeper alone."
    )]
    Watch(WatchArgs),
    /// Test a filter against a log file, like fail2ban-regex
    #[command(name = "regex-test")]
    RegexTest(RegexTestArgs),
    /// Make sure a set exists and the kernel holds every ban of the ledger (fail2ban's actionstart)
    Ensure(EnsureArgs),
    /// Exit 0 if the set's kernel objects and rule are all in place, 1 if not (fail2ban's actioncheck)
    Check(SetArg),
    /// Act as an sshguard firewall backend: read its commands on standard input
    #[command(name = "sshg-fw")]
    SshgFw(SshgFwArgs),
    /// Act as blocklistd's control program (blocklistd -C)
    #[command(name = "blocklistd-helper")]
    BlocklistdHelper(BlocklistdArgs),
    /// Install banset: binary, default config, service, fail2ban action, man pages, completions, state directory
    #[command(
        long_about = "Install banset from this binary: itself in PREFIX/bin, the commented default config \
            (/etc/banset/banset.toml; FreeBSD PREFIX/etc/banset; an existing one is never overwritten), \
            the systemd unit (FreeBSD: the rc.d script), fail2ban's banset actions when fail2ban's \
            directory exists, the man pages, the bash, zsh and fish completions, and the state directory \
            with mode 0700. It enables and starts nothing.\n\n\
            With --dry-run it lists what it would do and touches nothing."
    )]
    Install(InstallArgs),
    /// Remove what `banset install` installed; the config and the ledger stay unless --purge
    Uninstall(UninstallArgs),
    /// Write the man pages or the shell completions into DIR (for packagers)
    #[command(hide = true)]
    Generate(GenerateArgs),
    /// Share bans with other hosts through PostgreSQL: set up the engine, add, join and revoke hosts
    #[command(
        subcommand,
        long_about = "Share bans with other hosts through a PostgreSQL 15 engine.\n\n\
            On the engine's host: `banset fleet hub-init --listen ADDR` creates a PostgreSQL cluster of \
            banset's own (Debian's pg_createcluster, cluster 15/banset, TLS), or `banset fleet init --dsn DSN` \
            uses an existing PostgreSQL. `banset fleet add-host NAME` prints the line to run on host NAME \
            (`banset fleet join ...`), which stores its credentials (0600) in the state directory. \
            `banset fleet revoke NAME` cuts a host off and lifts its bans everywhere; `banset fleet status` \
            shows the engine, the hosts, this host's cursor, outbox and suppressed remote bans.\n\n\
            With `[fleet]` in banset.toml and this host joined, `banset watch` publishes its jails' bans \
            and applies the other hosts' (docs/fleet.md); `banset fleet sync --once` does one round by hand."
    )]
    Fleet(FleetCommand),
}

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Create the fleet schema in an existing PostgreSQL (DSN of a role that may create roles)
    Init(FleetInitArgs),
    /// Create and start a PostgreSQL cluster of banset's own (pg_createcluster), with TLS, and the schema
    #[command(name = "hub-init")]
    HubInit(FleetHubInitArgs),
    /// Register host NAME and print the `banset fleet join` line to run on it
    #[command(name = "add-host")]
    AddHost(FleetAddHostArgs),
    /// Store this host's fleet credentials (the line `add-host` printed), after checking they work
    Join(FleetJoinArgs),
    /// Cut host NAME off: no more logins, its sessions ended, its bans lifted on every host
    Revoke(FleetHostArg),
    /// Show the engine, the hosts, this host's cursor and lag, outbox and suppressed remote bans
    Status(FleetJsonArg),
    /// Publish this host's queued bans and apply the other hosts' changes, once (what the daemon does continuously)
    Sync(FleetSyncArgs),
}

#[derive(Debug, Args)]
pub struct FleetJsonArg {
    /// Print as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct FleetSyncArgs {
    /// One round, then exit (the only mode: the daemon runs the loop)
    #[arg(long, required = true)]
    pub once: bool,
    /// Take a whole snapshot instead of the changes after this host's cursor (after changing what [fleet] accepts)
    #[arg(long)]
    pub snapshot: bool,
    /// Print as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct FleetInitArgs {
    /// libpq DSN of the owner (\"host=... port=... dbname=... user=... password=...\"); `-` reads it from standard input
    #[arg(long, value_name = "DSN")]
    pub dsn: String,
    /// CA certificate of the engine: TLS is then required and verified
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Host name or address the other hosts connect to [default: the DSN's host]
    #[arg(long, value_name = "HOST")]
    pub public_host: Option<String>,
    /// Port the other hosts connect to [default: the DSN's port]
    #[arg(long, value_name = "PORT")]
    pub public_port: Option<u16>,
}

#[derive(Debug, Args)]
pub struct FleetHubInitArgs {
    /// Address the engine listens on and the other hosts connect to (an IP address)
    #[arg(long, value_name = "ADDR")]
    pub listen: std::net::IpAddr,
    /// TCP port of the new cluster [default: the first free one pg_createcluster finds]
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Name of the cluster (pg_lsclusters); an existing cluster of that name is reused only if banset made it
    #[arg(long, default_value = "banset", value_name = "NAME")]
    pub cluster: String,
}

#[derive(Debug, Args)]
pub struct FleetAddHostArgs {
    /// The host's name (a-z 0-9 _ -): its role is banset.NAME
    pub name: String,
    /// How many rows the host may publish (the flood bound) [default: the fleet's, 100000]
    #[arg(long, value_name = "ROWS")]
    pub quota: Option<i64>,
}

#[derive(Debug, Args)]
pub struct FleetJoinArgs {
    /// The host's DSN from `add-host`; `-` reads it from standard input (keeps the password out of ps)
    #[arg(long, value_name = "DSN")]
    pub dsn: String,
    /// The engine's CA certificate, as `add-host` printed it (the PEM's base64 on one line)
    #[arg(long, value_name = "BASE64", conflicts_with = "ca")]
    pub ca_cert: Option<String>,
    /// The engine's CA certificate, as a PEM file
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct FleetHostArg {
    /// The host's name
    pub name: String,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Installation prefix: the binary goes in PREFIX/bin, man pages in PREFIX/share/man [default: /usr/local]
    #[arg(long, value_name = "DIR")]
    pub prefix: Option<PathBuf>,
    /// Stage every file under DIR instead of / (for packages and tests); paths inside files stay final
    #[arg(long, value_name = "DIR")]
    pub destdir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct UninstallArgs {
    /// The prefix given to install [default: /usr/local]
    #[arg(long, value_name = "DIR")]
    pub prefix: Option<PathBuf>,
    /// The staging directory given to install
    #[arg(long, value_name = "DIR")]
    pub destdir: Option<PathBuf>,
    /// Also remove the configuration directory and the state directory (the ledger of bans)
    #[arg(long)]
    pub purge: bool,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// What to write
    #[arg(value_enum)]
    pub what: Generated,
    /// Directory to write into (created if missing)
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Generated {
    /// banset.1, banset-SUBCOMMAND.1 and banset.toml.5
    Man,
    /// banset (bash), _banset (zsh), banset.fish
    Completions,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Validate the configuration (jails, filters, sets) and exit: 0 if good, 2 with the error
    #[arg(long)]
    pub check: bool,
    /// Log lines as text or as one JSON object per line (under systemd, fields go to the journal either way)
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    pub log_format: crate::daemon::logging::LogFormat,
    /// Also run the enabled jails of this fail2ban configuration directory (e.g. /etc/fail2ban)
    #[arg(long, value_name = "DIR")]
    pub fail2ban: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RegexTestArgs {
    /// Log file to read (- for standard input)
    pub log: PathBuf,
    /// A built-in filter (sshd, sshd-aggressive, postfix, postfix-sasl, dovecot, qpopper), a fail2ban filter file (/etc/fail2ban/filter.d/sshd.conf, with [mode=aggressive] if wanted), or one failregex with `<HOST>`
    pub filter: String,
    /// Extra ignoreregex (repeatable)
    #[arg(long, value_name = "REGEX")]
    pub ignoreregex: Vec<String>,
    /// Print each matched line
    #[arg(long)]
    pub print_matched: bool,
    /// Print each line no failregex matched
    #[arg(long)]
    pub print_missed: bool,
    /// One JSON object per matched line (line, filter, regex, address), then one with the totals
    #[arg(long)]
    pub json: bool,
}

/// How a set is made, for `create` and for `add` when the set is new.
#[derive(Debug, Args, Default)]
pub struct SetOptions {
    /// Firewall that holds the set: nftables, ipset or firewalld on Linux, pf or ipfw on FreeBSD [default: firewalld when it is running, else nftables; pf on FreeBSD]
    #[arg(long, value_name = "BACKEND")]
    pub backend: Option<String>,
    /// Address families: inet, inet6 or both
    #[arg(long, value_name = "FAMILY")]
    pub family: Option<String>,
    /// Most members the set may hold (ipset's maxelem) [default: 1048576]
    #[arg(long, value_name = "N")]
    pub maxelem: Option<u32>,
    /// Block only these destination ports, e.g. 25,465,587 or smtp,submission
    #[arg(long, value_name = "PORTS")]
    pub ports: Option<String>,
    /// Block only this protocol: tcp, udp or all [default: tcp with --ports, else all]
    #[arg(long, value_name = "PROTO")]
    pub protocol: Option<String>,
    /// What the rule does with banned traffic: drop or reject [default: drop]
    #[arg(long, value_name = "TYPE")]
    pub blocktype: Option<String>,
    /// Allow prefixes (CIDR) as well as single addresses (the default)
    #[arg(long, conflicts_with = "no_prefixes")]
    pub prefixes: bool,
    /// Single addresses only
    #[arg(long)]
    pub no_prefixes: bool,
    /// Create no blocking rule: hook the set into your own ruleset yourself
    #[arg(long)]
    pub no_hook: bool,
    /// firewalld: also save the rule in firewalld's permanent configuration, so a restart or reboot keeps it
    #[arg(long)]
    pub permanent: bool,
    /// What members mean: ban (they are blocked, the default) or allow-only (only they, loopback and this host reach the rule's ports)
    #[arg(long, value_name = "POLICY", conflicts_with = "allow_only")]
    pub policy: Option<String>,
    /// Same as --policy allow-only: only members reach the ports, which it needs (e.g. --allow-only --ports 22,587)
    #[arg(long)]
    pub allow_only: bool,
}

impl SetOptions {
    /// No option given.
    pub fn is_empty(&self) -> bool {
        self.backend.is_none()
            && self.family.is_none()
            && self.maxelem.is_none()
            && self.ports.is_none()
            && self.protocol.is_none()
            && self.blocktype.is_none()
            && !self.prefixes
            && !self.no_prefixes
            && !self.no_hook
            && !self.permanent
            && self.policy.is_none()
            && !self.allow_only
    }
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    pub set: String,
    /// Default ban timeout of the set [default: 1d]
    #[arg(long, value_name = "T")]
    pub timeout: Option<String>,
    /// Create an allow-only set even when it would lock out this ssh session or an established connection, or is empty
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub options: SetOptions,
}

#[derive(Debug, Args)]
pub struct ChangeArgs {
    pub set: String,
    /// Change an allow-only set's ports even when that would lock out this ssh session or an established connection
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub options: SetOptions,
}

#[derive(Debug, Args)]
pub struct EnsureArgs {
    pub set: String,
    /// Default ban timeout of the set, if it is created [default: 1d]
    #[arg(long, value_name = "T")]
    pub timeout: Option<String>,
    #[command(flatten)]
    pub options: SetOptions,
    /// fail2ban's database: also ban what it holds as active for --jail (bans fail2ban restores without running the action)
    #[arg(long, value_name = "PATH", requires = "jail")]
    pub fail2ban_db: Option<PathBuf>,
    /// The fail2ban jail whose bans --fail2ban-db imports
    #[arg(long, value_name = "NAME", requires = "fail2ban_db")]
    pub jail: Option<String>,
}

#[derive(Debug, Args)]
pub struct TargetInput {
    /// Addresses or prefixes: 1.2.3.4, 10.0.0.0/8, 2001:db8::/64
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Read targets from a file (or - for standard input), one per line; # starts a comment
    #[arg(long, value_name = "PATH", conflicts_with = "targets")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    pub set: String,
    #[command(flatten)]
    pub input: TargetInput,
    /// Ban length: 604800, 7d, 1h30m; -1, never or permanent for no end [default: the set's]
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub timeout: Option<String>,
    /// When the ban started (Unix time, fail2ban's `<time>`; fractions are fine): it ends at SINCE + TIMEOUT
    #[arg(long, value_name = "UNIX_TIME", value_parser = parse_unix_time)]
    pub since: Option<i64>,
    /// Reason recorded with the ban (jail, ticket, ...)
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,
    /// Allow prefixes wider than /8 (IPv4) or /16 (IPv6)
    #[arg(long)]
    pub force: bool,
    /// Fail (exit 2) instead of creating the set when it does not exist (fail2ban's actionban: its repair then recreates the set as the jail configures it)
    #[arg(long)]
    pub no_create: bool,
    /// Also cut the banned sources' established connections (pf: pfctl -k)
    #[arg(long)]
    pub kill_states: bool,
    /// Also publish the bans to the fleet (queued in the ban's own transaction; sent now if the engine answers, else later)
    #[arg(long)]
    pub fleet: bool,
    #[command(flatten)]
    pub options: SetOptions,
}

#[derive(Debug, Args)]
pub struct DelArgs {
    pub set: String,
    #[command(flatten)]
    pub input: TargetInput,
    /// A set that does not exist is fine too (nothing to unban): for fail2ban's actionunban
    #[arg(long)]
    pub if_exists: bool,
    /// Take members out of an allow-only set even when that would lock out this ssh session or an established connection, or empty it
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct SshgFwArgs {
    /// The ban set sshguard's blocks go to (created with the options below if missing)
    pub set: String,
    /// Kernel timeout of each block, a safety net should sshguard never release it [default: never; sshguard releases]
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub timeout: Option<String>,
    #[command(flatten)]
    pub options: SetOptions,
}

#[derive(Debug, Args)]
pub struct BlocklistdArgs {
    /// add, rem or flush, then blocklistd's arguments: RULENAME PROTO ADDR MASK PORT, and an ID after rem
    #[arg(value_name = "ARGS", num_args = 0.., allow_hyphen_values = true, trailing_var_arg = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("feed").required(true).multiple(true).args(["file", "rir"]))]
pub struct ReplaceArgs {
    pub set: String,
    /// File (or - for standard input) holding the new content, one address or prefix per line (# and ; comments); adjacent and overlapping prefixes are merged. With --rir: added to the registry's addresses
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// A Regional Internet Registry's delegated-statistics file (or -), e.g. delegated-apnic-latest: the new content is the addresses it delegates to --country
    #[arg(long, value_name = "PATH", requires = "country")]
    pub rir: Option<PathBuf>,
    /// With --rir: the countries, ISO 3166 codes such as JP or JP,KR
    #[arg(long, value_name = "CC[,CC..]", requires = "rir")]
    pub country: Option<String>,
    /// Refuse a new list with more than PCT percent fewer entries than the set holds (a truncated download), unless --force
    #[arg(long, value_name = "PCT", default_value_t = banset_core::feed::shrink::DEFAULT_MAX_SHRINK_PERCENT, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub max_shrink: u8,
    /// Ban length of every entry [default: the set's]
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub timeout: Option<String>,
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,
    /// Take a list that shrank past --max-shrink, one that leaves out this ssh session (allow-only sets), and prefixes wider than /8 (IPv4) or /16 (IPv6)
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    pub set: String,
    pub target: String,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this set
    pub set: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SetArg {
    pub set: String,
}

#[derive(Debug, Args)]
pub struct FlushArgs {
    pub set: String,
    /// Flush an allow-only set even though its rule then blocks every source on its ports
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Only this set
    pub set: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AdoptArgs {
    /// Sets to adopt [default: every banset set the kernel holds]
    #[arg(value_name = "SET")]
    pub sets: Vec<String>,
    /// Default ban timeout of a set the ledger does not know [default: 1d]
    #[arg(long, value_name = "T")]
    pub timeout: Option<String>,
    #[command(flatten)]
    pub options: SetOptions,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this jail: failures, what it reads, its bans (banset's jails, and fail2ban's through banset's action)
    pub jail: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UnbanArgs {
    /// Addresses or prefixes; a prefix also unbans the bans inside it
    #[arg(
        value_name = "TARGET",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub targets: Vec<String>,
    /// Unban everything (in every set, or in --set)
    #[arg(long)]
    pub all: bool,
    /// Only in this set
    #[arg(long, value_name = "SET")]
    pub set: Option<String>,
    /// Also withdraw the bans on every fleet host (needs the fleet admin's credentials, on the host that ran `fleet init`)
    #[arg(long, conflicts_with = "all")]
    pub fleet: bool,
    /// Print the reply as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BanArgs {
    /// The jail (banset.toml's, or fail2ban's the daemon reads)
    pub jail: String,
    /// Addresses or prefixes
    #[arg(value_name = "TARGET", required = true)]
    pub targets: Vec<String>,
    /// Ban length [default: the jail's bantime]
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub timeout: Option<String>,
    /// Print the reply as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ControlArgs {
    /// One request, a JSON object
    #[arg(
        value_name = "REQUEST",
        required_unless_present = "stdio",
        conflicts_with = "stdio"
    )]
    pub request: Option<String>,
    /// Serve the protocol on standard input and output, without the daemon
    #[arg(long)]
    pub stdio: bool,
}

#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// Whole or fractional Unix seconds (fail2ban's `<time>` may be a float),
/// rounded down.
pub fn parse_unix_time(text: &str) -> Result<i64, String> {
    let (int, frac) = text.split_once('.').unwrap_or((text, "0"));
    let digits = |s: &str| !s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !digits(frac) {
        return Err(format!(
            "{text:?} is not a Unix time in seconds (e.g. 1700000000)"
        ));
    }
    int.parse()
        .map_err(|_| format!("{text:?} is not a Unix time in seconds"))
}

/// A set's name from the command line, checked.
pub fn set_name(text: &str) -> anyhow::Result<banset_core::SetName> {
    Ok(banset_core::SetName::new(text)?)
}

// `banset history` and `banset find`: here with every other command's
// arguments, so that `args` imports no command. (Plain comments: clap
// would take a doc comment for the commands' help.)
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The address or prefix, as it was banned
    pub target: String,
    /// Show at most the latest N events
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub limit: u32,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct FindArgs {
    /// The address or prefix
    pub target: String,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_times_as_fail2ban_writes_them() {
        assert_eq!(parse_unix_time("1700000000"), Ok(1_700_000_000));
        assert_eq!(parse_unix_time("1700000000.987"), Ok(1_700_000_000));
        for bad in [
            "",
            "-5",
            "1e9",
            "17.",
            ".5",
            "now",
            "1700000000 ",
            "99999999999999",
        ] {
            assert!(parse_unix_time(bad).is_err(), "{bad}");
        }
    }
}
