//! The command line, defined once with clap's derive API; completions and man pages are
//! generated from it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Exit codes, also printed by `--help`.
pub const EXIT_CODES: &str = "Exit codes: 0 ok; 1 a finding (a breaking schema change, an invalid \
document, a dead letter not found, dead letters a redrive could not reach); 2 a usage, \
configuration or connection error.";

/// brokerkit: publish, tail, inspect dead letters and check event contracts on any broker
/// brokerkit supports (the URL schemes compiled in are listed under --url).
#[derive(Debug, Parser)]
#[command(name = "brokerkit", version, after_help = EXIT_CODES, propagate_version = true)]
pub struct Cli {
    /// Broker URL (wins over BROKERKIT_URL and the configuration file).
    #[arg(long, global = true, value_name = "URL", long_help = url_help())]
    pub url: Option<String>,

    /// Configuration file (brokerkit.toml); default: $BROKERKIT_CONFIG when set.
    #[arg(long, global = true, value_name = "PATH", env = "BROKERKIT_CONFIG")]
    pub config: Option<PathBuf>,

    /// Machine-readable JSON on stdout (read commands; tail prints one object per line).
    #[arg(long, global = true)]
    pub json: bool,

    /// Seconds to wait for the broker to connect.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 15)]
    pub connect_timeout: u64,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The long help of `--url`: the URL schemes of the adapters compiled into this binary.
fn url_help() -> String {
    format!(
        "Broker URL (wins over BROKERKIT_URL and the configuration file). Schemes compiled \
         in: {}; each adapter's README describes its URL. Passwords are never printed.",
        brokerkit::Registry::default().schemes().join(", ")
    )
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send messages to a destination.
    #[command(
        after_help = "Example: brokerkit publish orders '{\"order_id\":1}' --header \
                            tenant=acme --key customer-7"
    )]
    Publish(PublishArgs),
    /// Print the messages of a destination, decoded, with all headers.
    ///
    /// By default tail reads as its own consumer group (`brokerkit-tail`), so it receives
    /// copies and takes nothing from the service's groups (what a group is on each broker:
    /// its adapter's README). That group persists after tail exits. Where the broker has no
    /// groups (`brokerkit caps` shows fan_out false: every consumer competes), tail needs
    /// --from-start (peek) or an explicit --group (which then consumes). --from-start peeks
    /// at what the destination holds, moving nothing, and exits.
    #[command(after_help = "Example: brokerkit tail orders --count 10 --json")]
    Tail(TailArgs),
    /// Dead-letter destinations: list, show and redrive.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Event contracts: compatibility between versions, validation of documents.
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// Print an AsyncAPI 3.0 document for the events under `--schemas` and the producers and
    /// consumer groups given (no broker involved).
    #[command(
        after_help = "Example: brokerkit asyncapi --title order-service --server \
                      local=$BROKERKIT_URL --produces orders=order.placed \
                      --consumes orders:billing=order.placed.v1 --out asyncapi.json"
    )]
    Asyncapi(AsyncApiArgs),
    /// Print what the broker can do (the README's capability table, for this URL).
    #[command(after_help = "Example: brokerkit caps --url \"$BROKERKIT_URL\"")]
    Caps,
    /// Connect, check that the broker answers, print the latency. Exit 2 if it does not.
    ///
    /// The check opens a producer for the destination `brokerkit.ping` (which declares it on
    /// brokers that create destinations on first use); nothing is sent.
    #[command(after_help = "Example: brokerkit ping --url amqp://guest:guest@127.0.0.1:5672/%2f")]
    Ping,
    /// Print a shell completion script.
    #[command(
        after_help = "Example: brokerkit completions bash > /etc/bash_completion.d/brokerkit"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write man pages (one per command) into a directory, or print the main page.
    #[command(after_help = "Example: brokerkit man --dir /usr/local/share/man/man1")]
    Man {
        /// Directory to write brokerkit.1, brokerkit-publish.1, ... into.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// `brokerkit publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Destination.
    pub destination: String,
    /// Payload text; `-` reads standard input.
    #[arg(conflicts_with = "file")]
    pub payload: Option<String>,
    /// Read the payload from a file.
    #[arg(long, value_name = "F")]
    pub file: Option<PathBuf>,
    /// A header, repeatable.
    #[arg(long = "header", short = 'H', value_name = "K=V")]
    pub headers: Vec<String>,
    /// Ordering key, where the broker has one (`brokerkit caps`: ordering_key).
    #[arg(long, value_name = "K")]
    pub key: Option<String>,
    /// event-type header.
    #[arg(long, value_name = "T", requires = "event_version")]
    pub event_type: Option<String>,
    /// event-version header.
    #[arg(long, value_name = "N", requires = "event_type")]
    pub event_version: Option<u32>,
    /// Send the message this many times (each with its own message id).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub count: u32,
}

/// `brokerkit asyncapi`.
#[derive(Debug, Args)]
pub struct AsyncApiArgs {
    /// Directory of checked-in schemas named `<type>.v<N>.json`.
    #[arg(long, value_name = "DIR", default_value = "schemas")]
    pub schemas: PathBuf,
    /// The application's title.
    #[arg(long, value_name = "T", default_value = "brokerkit application")]
    pub title: String,
    /// The application's version.
    #[arg(long = "app-version", value_name = "V", default_value = "1.0.0")]
    pub app_version: String,
    /// A server, repeatable: NAME=URL (a brokerkit URL; credentials are left out).
    #[arg(long = "server", value_name = "NAME=URL")]
    pub servers: Vec<String>,
    /// A producer, repeatable: DEST=TYPE or DEST=TYPE.vN (default: the newest version).
    #[arg(long, value_name = "DEST=TYPE[.vN]")]
    pub produces: Vec<String>,
    /// A consumer group, repeatable: DEST:GROUP=TYPE or DEST:GROUP=TYPE.vN.
    #[arg(long, value_name = "DEST:GROUP=TYPE[.vN]")]
    pub consumes: Vec<String>,
    /// Write the document here instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `brokerkit tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// Destination.
    pub destination: String,
    /// Consumer group to read as (default `brokerkit-tail`; its messages are acked).
    #[arg(long, value_name = "G", conflicts_with = "from_start")]
    pub group: Option<String>,
    /// Stop after this many messages.
    #[arg(long, value_name = "N")]
    pub count: Option<usize>,
    /// Peek at the messages the destination holds, oldest first, moving nothing, then exit.
    #[arg(long)]
    pub from_start: bool,
    /// Stop after this many seconds without a message (default: wait forever).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
}

/// `brokerkit dlq`.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List the dead letters of DEST (or of DEST.dlq), moving nothing.
    #[command(after_help = "Example: brokerkit dlq list orders --limit 20")]
    List {
        /// Destination (its dead-letter destination is read), or the .dlq name itself.
        destination: String,
        /// Most entries.
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: usize,
    },
    /// Show one dead letter: envelope, headers, payload.
    #[command(after_help = "Example: brokerkit dlq show orders 3")]
    Show {
        /// Destination (or its .dlq name).
        destination: String,
        /// Id from `dlq list`.
        id: String,
    },
    /// Move dead letters back to their original destinations.
    #[command(
        after_help = "Example: brokerkit dlq redrive orders --filter kind=timeout \
                            --limit 100 --rate 50 --dry-run"
    )]
    Redrive(RedriveArgs),
}

/// `brokerkit dlq redrive`.
#[derive(Debug, Args)]
pub struct RedriveArgs {
    /// Destination (or its .dlq name).
    pub destination: String,
    /// Only dead letters matching every filter: `reason~TEXT` (substring, any case),
    /// `kind=K` (error kind), `group=G` (original group), `header:K=V`.
    #[arg(long = "filter", value_name = "FILTER")]
    pub filters: Vec<String>,
    /// Most messages moved.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub limit: usize,
    /// Most messages sent per second.
    #[arg(long, value_name = "N")]
    pub rate: Option<f64>,
    /// Consumer group to read the dead-letter destination as (default: the adapter's default).
    #[arg(long, value_name = "G")]
    pub group: Option<String>,
    /// Report what would move (by browsing), move nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Compatibility modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// New consumers read old events.
    Backward,
    /// Old consumers read new events.
    Forward,
    /// Both.
    Full,
}

/// `brokerkit schema`.
#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Compare two versions of a JSON Schema; exit 1 on a breaking change.
    ///
    /// With --against GITREF, compares every *.json schema in the given directories (or files)
    /// with its version at that git ref.
    #[command(
        after_help = "Examples:\n  brokerkit schema check schemas/order.placed.v1.json new.json --mode full\n  \
                            brokerkit schema check --against origin/main schemas/"
    )]
    Check {
        /// OLD NEW, or with --against the directories and files to check.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Which direction must stay compatible.
        #[arg(long, value_enum, default_value_t = Mode::Backward)]
        mode: Mode,
        /// Compare the working tree with this git ref.
        #[arg(long, value_name = "GITREF")]
        against: Option<String>,
    },
    /// Validate JSON documents against a schema; exit 1 if any is invalid.
    #[command(
        after_help = "Example: brokerkit schema validate schemas/order.placed.v1.json order.json"
    )]
    Validate {
        /// The schema.
        schema: PathBuf,
        /// Documents (`-` reads standard input).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}
