//! The raw baseline: what the SDK run does (`bench/src/sdk_run.rs`) with the `redis` crate
//! alone. `--producers` tasks `XADD` their share (one pipeline of `--batch` entries per call),
//! one consumer reads `XREADGROUP COUNT <prefetch> BLOCK 100` and `XACK`s each entry, awaited.

use std::time::Instant;

use brokerkit::{Error, ErrorKind, Result};
use brokerkit_bench_driver::measure::{latency_us, stamped_payload, unique_name, RunResult};
use brokerkit_bench_driver::Args;
use redis::aio::MultiplexedConnection;
use redis::Value;

fn err(e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Unavailable, e.to_string())
}

fn client_url(url: &str) -> String {
    let rest = url.strip_prefix("redis+streams://").unwrap_or(url);
    format!("redis://{}", rest.split('?').next().unwrap_or(rest))
}

pub async fn run(args: &Args) -> Result<RunResult> {
    let client = redis::Client::open(client_url(&args.url)).map_err(err)?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(err)?;
    let key = unique_name("bench-raw");
    let _: Value = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&key)
        .arg("bench")
        .arg("$")
        .arg("MKSTREAM")
        .query_async(&mut conn)
        .await
        .map_err(err)?;
    let started = Instant::now();
    let mut senders = Vec::new();
    for p in 0..args.producers {
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(err)?;
        let (key, share, args) = (key.clone(), args.share(p), args.clone());
        senders.push(tokio::spawn(
            async move { send(conn, &key, share, &args).await },
        ));
    }
    let mut latencies = Vec::with_capacity(args.messages);
    while latencies.len() < args.messages {
        let reply: Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("bench")
            .arg("raw")
            .arg("COUNT")
            .arg(args.prefetch)
            .arg("BLOCK")
            .arg(100)
            .arg("STREAMS")
            .arg(&key)
            .arg(">")
            .query_async(&mut conn)
            .await
            .map_err(err)?;
        for (id, payload) in entries(reply) {
            latencies.push(latency_us(&payload));
            let _: i64 = redis::cmd("XACK")
                .arg(&key)
                .arg("bench")
                .arg(&id)
                .query_async(&mut conn)
                .await
                .map_err(err)?;
        }
    }
    let elapsed = started.elapsed();
    for s in senders {
        s.await.map_err(err)??;
    }
    let _: Value = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .map_err(err)?;
    Ok(RunResult::new(latencies.len(), elapsed, latencies))
}

async fn send(mut conn: MultiplexedConnection, key: &str, share: usize, args: &Args) -> Result<()> {
    let mut left = share;
    while left > 0 {
        let n = left.min(args.batch.max(1));
        let mut pipe = redis::pipe();
        for _ in 0..n {
            let cmd = pipe
                .cmd("XADD")
                .arg(key)
                .arg("*")
                .arg("payload")
                .arg(stamped_payload(args.size));
            if args.raw_headers {
                cmd.arg("message-id")
                    .arg("0190b8e0-0000-7000-8000-000000000000")
                    .arg("correlation-id")
                    .arg("0190b8e0-0000-7000-8000-000000000001")
                    .arg("timestamp")
                    .arg("1700000000000");
            }
        }
        let _: Vec<Value> = pipe.query_async(&mut conn).await.map_err(err)?;
        left -= n;
    }
    Ok(())
}

/// `(id, payload)` of each entry of an `XREADGROUP` reply.
fn entries(reply: Value) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let Value::Array(streams) = reply else {
        return out;
    };
    for s in streams {
        let Value::Array(mut parts) = s else { continue };
        let Some(Value::Array(list)) = parts.pop() else {
            continue;
        };
        for e in list {
            let Value::Array(e) = e else { continue };
            let mut it = e.into_iter();
            let (Some(Value::BulkString(id)), Some(Value::Array(fields))) = (it.next(), it.next())
            else {
                continue;
            };
            let mut f = fields.into_iter();
            while let (Some(n), Some(v)) = (f.next(), f.next()) {
                if let (Value::BulkString(n), Value::BulkString(v)) = (n, v) {
                    if n == b"payload" {
                        out.push((id.clone(), v));
                    }
                }
            }
        }
    }
    out
}
