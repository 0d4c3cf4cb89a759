//! `dlq list`, `dlq show`, `dlq redrive`.

use std::collections::BTreeMap;
use std::sync::Arc;

use brokerkit::redrive::{redrive, RedriveOptions};
use brokerkit::{dead_letter_destination, DeadLetterEnvelope, DeadLetterView, Message};
use owo_colors::OwoColorize;
use serde_json::json;

use crate::args::{Cli, DlqCommand, RedriveArgs};
use crate::{connect, print, CmdResult, Failure, Outcome};

/// `orders` → `orders.dlq`; `orders.dlq` stays.
pub fn dlq_name(destination: &str) -> String {
    if destination.ends_with(".dlq") {
        destination.to_string()
    } else {
        dead_letter_destination(destination)
    }
}

/// Runs a `dlq` command.
pub async fn run(cli: &Cli, c: &DlqCommand) -> CmdResult {
    match c {
        DlqCommand::List { destination, limit } => list(cli, destination, *limit).await,
        DlqCommand::Show { destination, id } => show(cli, destination, id).await,
        DlqCommand::Redrive(a) => redrive_cmd(cli, a).await,
    }
}

fn check_limit(limit: usize) -> Result<(), Failure> {
    if limit == 0 || limit > brokerkit::MAX_BROWSE {
        return Err(Failure(format!(
            "--limit must be 1 to {}",
            brokerkit::MAX_BROWSE
        )));
    }
    Ok(())
}

async fn list(cli: &Cli, destination: &str, limit: usize) -> CmdResult {
    check_limit(limit)?;
    let dlq = dlq_name(destination);
    let (broker, _) = connect(cli).await?;
    let entries = broker.browse_dead_letters(&dlq, limit).await?;
    broker.close().await.ok();
    if cli.json {
        let list: Vec<_> = entries
            .iter()
            .map(|d| print::dead_letter_json(&dlq, d))
            .collect();
        println!("{}", serde_json::Value::Array(list));
        return Ok(Outcome::Ok);
    }
    print::note(&format!(
        "{dlq}: {} dead letter(s) shown (limit {limit}); nothing moved",
        entries.len()
    ));
    if entries.is_empty() {
        return Ok(Outcome::Ok);
    }
    anstream::println!(
        "{}",
        format!(
            "{:<10} {:<24} {:>8} {:<14} {:<16} REASON",
            "ID", "LAST FAILURE (UTC)", "ATTEMPTS", "KIND", "FROM"
        )
        .bold()
    );
    for d in &entries {
        match &d.envelope {
            Some(e) => {
                let from = match &e.original_group {
                    Some(g) => format!("{}/{g}", e.original_destination),
                    None => e.original_destination.clone(),
                };
                anstream::println!(
                    "{:<10} {:<24} {:>8} {:<14} {:<16} {}",
                    d.id,
                    print::time(e.last_failure),
                    e.attempts,
                    e.reason.error_kind.map(|k| k.as_str()).unwrap_or("-"),
                    print::cut(&from, 16),
                    print::cut(&e.reason.reason, 60)
                );
            }
            None => anstream::println!(
                "{:<10} {:<24} {:>8} {:<14} {:<16} {}",
                d.id,
                "-",
                "-",
                "-",
                "-",
                "(no dead-letter envelope)".dimmed()
            ),
        }
    }
    Ok(Outcome::Ok)
}

async fn show(cli: &Cli, destination: &str, id: &str) -> CmdResult {
    let dlq = dlq_name(destination);
    let (broker, _) = connect(cli).await?;
    let entries = broker
        .browse_dead_letters(&dlq, brokerkit::MAX_BROWSE)
        .await?;
    broker.close().await.ok();
    let Some(d) = entries.iter().find(|d| d.id == id) else {
        print::warn(&format!(
            "no dead letter with id {id:?} in {dlq} ({} held; ids come from `brokerkit dlq list`)",
            entries.len()
        ));
        return Ok(Outcome::Finding);
    };
    if cli.json {
        println!("{}", print::dead_letter_json(&dlq, d));
        return Ok(Outcome::Ok);
    }
    anstream::println!("{}  id={}", dlq.cyan().bold(), d.id);
    match &d.envelope {
        Some(e) => {
            let row = |k: &str, v: String| anstream::println!("  {:<22} {v}", k.bold());
            row("reason", e.reason.reason.clone());
            row(
                "kind",
                e.reason
                    .error_kind
                    .map(|k| k.as_str().to_string())
                    .unwrap_or("-".into()),
            );
            row("attempts", e.attempts.to_string());
            row("original destination", e.original_destination.clone());
            row(
                "original group",
                e.original_group.clone().unwrap_or("-".into()),
            );
            row("first failure", print::time(e.first_failure));
            row("last failure", print::time(e.last_failure));
            for i in &e.reason.validation_errors {
                let at = if i.pointer.is_empty() {
                    "/"
                } else {
                    &i.pointer
                };
                row("validation error", format!("{at}: {}", i.reason));
            }
        }
        None => anstream::println!("  {}", "(no dead-letter envelope)".dimmed()),
    }
    anstream::println!("{}", "headers".bold());
    for (k, v) in d.message.headers.iter() {
        if !k.starts_with("dlq-") {
            anstream::println!("  {}: {v}", k.dimmed());
        }
    }
    if let Some(k) = &d.message.key {
        anstream::println!("{} {k}", "key".bold());
    }
    anstream::println!("{}", "payload".bold());
    anstream::println!("{}", print::payload_text(&d.message.payload));
    Ok(Outcome::Ok)
}

/// One `--filter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `reason~TEXT`: the reason contains TEXT, ignoring case.
    Reason(String),
    /// `kind=K`: the error kind.
    Kind(String),
    /// `group=G`: the original group.
    Group(String),
    /// `header:K=V`: a header of the message.
    Header(String, String),
}

impl Filter {
    /// Parses `reason~TEXT`, `kind=K`, `group=G`, `header:K=V`.
    pub fn parse(text: &str) -> Result<Filter, Failure> {
        let bad = || {
            Failure(format!(
                "--filter {text:?}: expected reason~TEXT, kind=K, group=G or header:K=V"
            ))
        };
        if let Some(t) = text.strip_prefix("reason~") {
            return Ok(Filter::Reason(t.to_lowercase()));
        }
        if let Some(k) = text.strip_prefix("kind=") {
            if brokerkit::ErrorKind::parse(k).is_none() {
                return Err(Failure(format!(
                    "--filter {text:?}: unknown error kind {k:?}"
                )));
            }
            return Ok(Filter::Kind(k.to_string()));
        }
        if let Some(g) = text.strip_prefix("group=") {
            return Ok(Filter::Group(g.to_string()));
        }
        if let Some(kv) = text.strip_prefix("header:") {
            let (k, v) = kv.split_once('=').ok_or_else(bad)?;
            return Ok(Filter::Header(k.to_string(), v.to_string()));
        }
        Err(bad())
    }

    /// Whether the dead letter matches.
    pub fn matches(&self, m: &Message, e: &DeadLetterEnvelope) -> bool {
        match self {
            Filter::Reason(t) => e.reason.reason.to_lowercase().contains(t),
            Filter::Kind(k) => e.reason.error_kind.is_some_and(|x| x.as_str() == k),
            Filter::Group(g) => e.original_group.as_deref() == Some(g.as_str()),
            Filter::Header(k, v) => m.headers.get(k) == Some(v.as_str()),
        }
    }
}

async fn redrive_cmd(cli: &Cli, a: &RedriveArgs) -> CmdResult {
    check_limit(a.limit)?;
    let filters: Vec<Filter> = a
        .filters
        .iter()
        .map(|f| Filter::parse(f))
        .collect::<Result<_, _>>()?;
    if let Some(r) = a.rate {
        if !(r.is_finite() && r > 0.0) {
            return Err(Failure("--rate must be a positive number".into()));
        }
    }
    let dlq = dlq_name(&a.destination);
    let (broker, _) = connect(cli).await?;
    let matches = |m: &Message, e: &DeadLetterEnvelope| filters.iter().all(|f| f.matches(m, e));
    if a.dry_run {
        let entries: Vec<DeadLetterView> = broker
            .browse_dead_letters(&dlq, brokerkit::MAX_BROWSE)
            .await?;
        broker.close().await.ok();
        let mut would: BTreeMap<String, usize> = BTreeMap::new();
        let (mut skipped, mut total) = (0, 0);
        for d in &entries {
            match &d.envelope {
                Some(e) if total < a.limit && matches(&d.message, e) => {
                    *would.entry(e.original_destination.clone()).or_default() += 1;
                    total += 1;
                }
                _ => skipped += 1,
            }
        }
        report(cli, &dlq, true, &would, skipped, 0);
        return Ok(Outcome::Ok);
    }
    let shared = Arc::new(filters.clone());
    let mut options = RedriveOptions::default()
        .limit(a.limit)
        .filter(move |m, e| shared.iter().all(|f| f.matches(m, e)));
    if let Some(g) = &a.group {
        options = options.group(g.clone());
    }
    if let Some(r) = a.rate {
        options = options.rate(r);
    }
    let r = redrive(&broker, &dlq, options).await?;
    crate::close(&broker).await;
    let moved: BTreeMap<String, usize> = r.moved.into_iter().collect();
    report(cli, &dlq, false, &moved, r.skipped, r.unreached);
    if r.unreached > 0 {
        return Ok(Outcome::Finding);
    }
    Ok(Outcome::Ok)
}

fn report(
    cli: &Cli,
    dlq: &str,
    dry_run: bool,
    moved: &BTreeMap<String, usize>,
    skipped: usize,
    unreached: usize,
) {
    let total: usize = moved.values().sum();
    if cli.json {
        println!(
            "{}",
            json!({"dead_letter_destination": dlq, "dry_run": dry_run, "moved": moved,
                   "total_moved": total, "skipped": skipped, "unreached": unreached})
        );
    } else {
        let verb = if dry_run { "would move" } else { "moved" };
        for (dest, n) in moved {
            println!("{verb} {n} to {dest}");
        }
        println!("{verb} {total} in all; {skipped} left in {dlq} (filtered out or no envelope)");
    }
    if unreached > 0 {
        print::warn(&format!(
            "{unreached} dead letter(s) held by {dlq} never reached the redrive's consumer group: \
             the group may have started at the tail (a new group on a stream that already has \
             consumers) or consumed them earlier. Pass --group naming the group that holds \
             them, or check with `brokerkit dlq list`."
        ));
    } else if total == 0 && !dry_run {
        print::note("nothing to redrive");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_filters() {
        assert_eq!(
            Filter::parse("reason~Time").unwrap(),
            Filter::Reason("time".into())
        );
        assert_eq!(
            Filter::parse("header:tenant=a=b").unwrap(),
            Filter::Header("tenant".into(), "a=b".into())
        );
        assert!(Filter::parse("kind=nonsense").is_err());
        assert!(Filter::parse("colour=red").is_err());
        assert_eq!(dlq_name("orders"), "orders.dlq");
        assert_eq!(dlq_name("orders.dlq"), "orders.dlq");
    }
}
