//! `brokerkit`: the command line of the brokerkit SDK. See `brokerkit --help` and the README's
//! "Command line" section.

mod args;
mod asyncapi;
mod broker_cmds;
mod dlq;
mod print;
mod schema;

use std::process::ExitCode;
use std::time::Duration;

use brokerkit::config_file::BrokerConfig;
use brokerkit::core::config::redact_text;
use brokerkit::Broker;
use clap::{CommandFactory, Parser};

use args::{Cli, Command};

/// What a command found: exit 0 (ok) or 1 (a finding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Ok,
    /// Exit 1: a breaking change, an invalid document, something not found.
    Finding,
}

/// A failure: exit 2 with this message (secrets redacted before printing).
#[derive(Debug)]
pub struct Failure(pub String);

impl From<brokerkit::Error> for Failure {
    fn from(e: brokerkit::Error) -> Self {
        Failure(e.to_string())
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure(e.to_string())
    }
}

/// Result of a command.
pub type CmdResult = Result<Outcome, Failure>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        // Local commands need no runtime.
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(*shell, &mut cmd, "brokerkit", &mut std::io::stdout());
            Ok(Outcome::Ok)
        }
        Command::Man { dir } => write_man(dir.as_deref()),
        Command::Schema(c) => schema::run(&cli, c),
        Command::Asyncapi(a) => asyncapi::run(a),
        _ => match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(run_broker_command(&cli)),
            Err(e) => Err(Failure(format!("cannot start the async runtime: {e}"))),
        },
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Finding) => ExitCode::from(1),
        Err(Failure(message)) => {
            print::error(&redact_text(&message));
            ExitCode::from(2)
        }
    }
}

async fn run_broker_command(cli: &Cli) -> CmdResult {
    match &cli.command {
        Command::Publish(a) => broker_cmds::publish(cli, a).await,
        Command::Tail(a) => broker_cmds::tail(cli, a).await,
        Command::Caps => broker_cmds::caps(cli).await,
        Command::Ping => broker_cmds::ping(cli).await,
        Command::Dlq(c) => dlq::run(cli, c).await,
        Command::Completions { .. }
        | Command::Man { .. }
        | Command::Schema(_)
        | Command::Asyncapi(_) => {
            unreachable!("handled without a broker")
        }
    }
}

/// The configuration (file, environment, then `--url`) and a connected broker.
pub async fn connect(cli: &Cli) -> Result<(Broker, BrokerConfig), Failure> {
    let mut config = BrokerConfig::load(cli.config.as_deref())?;
    if let Some(url) = &cli.url {
        config.url = Some(url.clone());
    }
    // An operator wants the broker's answer now, not after the SDK's 30 s of retries: one
    // attempt unless the file or BROKERKIT_CONNECT_DEADLINE_MS asks for more.
    config.connect_deadline_ms.get_or_insert(0);
    let timeout = Duration::from_secs(cli.connect_timeout.max(1));
    let broker = match tokio::time::timeout(timeout, config.connect()).await {
        Ok(b) => b?,
        Err(_) => {
            return Err(Failure(format!(
                "no answer from {} within {} s",
                redacted_url(&config),
                timeout.as_secs()
            )))
        }
    };
    Ok((broker, config))
}

/// Closes the broker before the process exits: every adapter's `close` returns once what was
/// acked is committed (waiting for its consumers' final offset commit where there is one), so
/// exiting is safe.
pub async fn close(broker: &Broker) {
    broker.close().await.ok();
}

/// The configured URL with secrets redacted.
pub fn redacted_url(config: &BrokerConfig) -> String {
    let url = config.url.as_deref().unwrap_or("memory://");
    match brokerkit::BrokerUrl::parse(url) {
        Ok(u) => u.redacted(),
        Err(_) => brokerkit::core::config::redact_unparsed(url),
    }
}

fn write_man(dir: Option<&std::path::Path>) -> CmdResult {
    let cmd = Cli::command();
    let Some(dir) = dir else {
        clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?;
        return Ok(Outcome::Ok);
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure(format!("cannot create {}: {e}", dir.display())))?;
    let mut written = Vec::new();
    write_man_tree(&cmd, "brokerkit", dir, &mut written)?;
    for w in written {
        println!("{w}");
    }
    Ok(Outcome::Ok)
}

fn write_man_tree(
    cmd: &clap::Command,
    name: &str,
    dir: &std::path::Path,
    written: &mut Vec<String>,
) -> Result<(), Failure> {
    let cmd = cmd.clone().name(name.to_string());
    let path = dir.join(format!("{name}.1"));
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
    std::fs::write(&path, buf)
        .map_err(|e| Failure(format!("cannot write {}: {e}", path.display())))?;
    written.push(path.display().to_string());
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        write_man_tree(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
