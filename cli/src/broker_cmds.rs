//! `publish`, `tail`, `caps`, `ping`.

use std::io::Read;
use std::time::{Duration, Instant};

use brokerkit::{Bytes, Capabilities, Headers, Message, Support};
use serde_json::json;

use crate::args::{Cli, PublishArgs, TailArgs};
use crate::{connect, print, redacted_url, CmdResult, Failure, Outcome};

/// Group tail reads as unless `--group` says otherwise.
pub const TAIL_GROUP: &str = "brokerkit-tail";

fn read_payload(a: &PublishArgs) -> Result<Bytes, Failure> {
    if let Some(f) = &a.file {
        return std::fs::read(f)
            .map(Bytes::from)
            .map_err(|e| Failure(format!("cannot read {}: {e}", f.display())));
    }
    match a.payload.as_deref() {
        Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| Failure(format!("cannot read standard input: {e}")))?;
            Ok(Bytes::from(buf))
        }
        Some(text) => Ok(Bytes::from(text.to_string())),
        None => Err(Failure(
            "no payload: give PAYLOAD, --file F, or - for standard input".into(),
        )),
    }
}

fn parse_headers(a: &PublishArgs) -> Result<Headers, Failure> {
    let mut h = Headers::new();
    for kv in &a.headers {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(Failure(format!("--header {kv:?}: expected K=V")));
        };
        h.insert(k.trim().to_string(), v.to_string())
            .map_err(|e| Failure(format!("--header {kv:?}: {}", e.message())))?;
    }
    if let (Some(t), Some(v)) = (&a.event_type, a.event_version) {
        h.set_event_type(t.clone())?;
        h.set_event_version(v)?;
    }
    Ok(h)
}

/// `brokerkit publish`.
pub async fn publish(cli: &Cli, a: &PublishArgs) -> CmdResult {
    let payload = read_payload(a)?;
    let headers = parse_headers(a)?;
    let (broker, _config) = connect(cli).await?;
    let producer = broker.producer(&a.destination).build().await?;
    let mut ids = Vec::new();
    for _ in 0..a.count {
        let mut h = headers.clone();
        // Set here (the correlation layer keeps it) so it can be printed.
        let id = h
            .message_id()
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        if a.count > 1 || h.message_id().is_none() {
            h.set_message_id(id.clone())?;
        }
        let mut m = Message::new(payload.clone()).with_headers(h);
        m.key = a.key.clone();
        producer.send(m).await?;
        ids.push(id);
    }
    broker.close().await.ok();
    if cli.json {
        println!(
            "{}",
            json!({"destination": a.destination, "published": ids.len(), "message_ids": ids})
        );
    } else {
        for id in &ids {
            println!("{id}");
        }
        print::note(&format!(
            "published {} message(s) to {} on {}",
            ids.len(),
            a.destination,
            broker.adapter()
        ));
    }
    Ok(Outcome::Ok)
}

fn show(cli: &Cli, destination: &str, id: Option<&str>, attempt: Option<u32>, m: &Message) {
    if cli.json {
        println!("{}", print::message_json(destination, id, attempt, m));
    } else {
        print::message_text(destination, id, attempt, m);
    }
}

/// `brokerkit tail`.
pub async fn tail(cli: &Cli, a: &TailArgs) -> CmdResult {
    let (broker, config) = connect(cli).await?;
    if a.count == Some(0) {
        return Ok(Outcome::Ok);
    }
    if a.from_start {
        let limit = a.count.unwrap_or(1000).min(brokerkit::MAX_BROWSE);
        let held = broker.browse(&a.destination, limit).await?;
        print::note(&format!(
            "tail: peeked at {} message(s) held by {} ({} browse: nothing moved)",
            held.len(),
            a.destination,
            broker.adapter()
        ));
        for b in &held {
            show(cli, &a.destination, Some(&b.id), None, &b.message);
        }
        return Ok(Outcome::Ok);
    }
    if !broker.capabilities().fan_out && a.group.is_none() {
        return Err(Failure(format!(
            "{} has no consumer groups: every consumer competes, so a live tail would take \
             messages from the service's consumers. Use --from-start to peek, or pass --group \
             to consume as that group",
            broker.adapter()
        )));
    }
    let group = a.group.as_deref().unwrap_or(TAIL_GROUP);
    let mut consumer = config
        .consumer(&broker, &a.destination, Some(group))
        .build()
        .await?;
    print::note(&format!(
        "tail: subscribed to {} on {} as group {group} (own group: it receives copies, other \
         groups keep theirs; messages it prints are acked)",
        a.destination,
        broker.adapter()
    ));
    let idle = a
        .timeout
        .filter(|t| t.is_finite() && *t > 0.0)
        .map(Duration::from_secs_f64);
    let mut seen = 0usize;
    loop {
        let next = async {
            match idle {
                Some(d) => tokio::time::timeout(d, consumer.next()).await.ok(),
                None => Some(consumer.next().await),
            }
        };
        let got = tokio::select! {
            got = next => got,
            _ = tokio::signal::ctrl_c() => None,
        };
        let Some(got) = got else { break };
        let Some(d) = got? else { break };
        show(cli, &a.destination, None, Some(d.attempt()), d.message());
        d.ack().await?;
        seen += 1;
        if a.count.is_some_and(|c| seen >= c) {
            break;
        }
    }
    consumer.close().await.ok();
    crate::close(&broker).await;
    print::note(&format!("tail: {seen} message(s)"));
    Ok(Outcome::Ok)
}

fn support(s: Support) -> &'static str {
    match s {
        Support::No => "no",
        Support::Native => "native",
        Support::Emulated => "emulated",
    }
}

fn ms(d: Option<Duration>) -> serde_json::Value {
    d.map(|d| json!(d.as_millis() as u64))
        .unwrap_or(serde_json::Value::Null)
}

fn caps_rows(c: &Capabilities) -> Vec<(&'static str, serde_json::Value)> {
    vec![
        ("max_payload_bytes", json!(c.max_payload_bytes)),
        ("max_batch", json!(c.max_batch)),
        ("redelivery", json!(c.redelivery)),
        ("delayed_redelivery", json!(support(c.delayed_redelivery))),
        ("max_delay_ms", ms(c.max_delay)),
        ("ordering_key", json!(support(c.ordering_key))),
        ("dead_letter", json!(support(c.dead_letter))),
        ("native_dedup", json!(c.native_dedup)),
        ("max_headers", json!(c.max_headers)),
        ("max_header_bytes", json!(c.max_header_bytes)),
        ("fan_out", json!(c.fan_out)),
        ("competing_consumers", json!(c.competing_consumers)),
        ("lease_extension", json!(support(c.lease_extension))),
        ("lease_ms", ms(c.lease)),
        ("browse", json!(support(c.browse))),
        ("crash_safe_attempts", json!(c.crash_safe_attempts)),
    ]
}

/// `brokerkit caps`.
pub async fn caps(cli: &Cli) -> CmdResult {
    let (broker, config) = connect(cli).await?;
    let rows = caps_rows(broker.capabilities());
    if cli.json {
        let mut o = serde_json::Map::new();
        o.insert("adapter".into(), json!(broker.adapter()));
        o.insert("url".into(), json!(redacted_url(&config)));
        o.extend(rows.into_iter().map(|(k, v)| (k.to_string(), v)));
        println!("{}", serde_json::Value::Object(o));
    } else {
        use owo_colors::OwoColorize;
        anstream::println!("{} ({})", broker.adapter().bold(), redacted_url(&config));
        for (k, v) in rows {
            let v = match v {
                serde_json::Value::Null => "-".to_string(),
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            anstream::println!("  {:<22} {v}", k);
        }
    }
    broker.close().await.ok();
    Ok(Outcome::Ok)
}

/// `brokerkit ping`.
pub async fn ping(cli: &Cli) -> CmdResult {
    let t0 = Instant::now();
    let (broker, config) = connect(cli).await?;
    let connected = t0.elapsed();
    let t1 = Instant::now();
    let timeout = Duration::from_secs(cli.connect_timeout.max(1));
    match tokio::time::timeout(timeout, broker.producer("brokerkit.ping").build()).await {
        Ok(r) => {
            r?;
        }
        Err(_) => {
            return Err(Failure(format!(
                "{} connected but did not answer within {} s",
                redacted_url(&config),
                timeout.as_secs()
            )))
        }
    }
    let answered = t1.elapsed();
    broker.close().await.ok();
    let (c, r) = (
        connected.as_secs_f64() * 1000.0,
        answered.as_secs_f64() * 1000.0,
    );
    if cli.json {
        println!(
            "{}",
            json!({"ok": true, "adapter": broker.adapter(), "url": redacted_url(&config),
                   "connect_ms": (c * 10.0).round() / 10.0, "answer_ms": (r * 10.0).round() / 10.0})
        );
    } else {
        println!(
            "{} ({}): connected in {c:.1} ms, answered in {r:.1} ms",
            broker.adapter(),
            redacted_url(&config)
        );
    }
    Ok(Outcome::Ok)
}
