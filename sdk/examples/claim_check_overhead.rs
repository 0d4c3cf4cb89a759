//! What claim-check costs for a large payload: send time and send→handled time of a payload
//! on `memory://` (16 MiB limit, so it can also go inline), inline and through the file and
//! S3 stores. One message at a time; medians and means of `--rounds` messages.
//!
//! ```sh
//! cargo run --release -p brokerkit --features claim-check-s3 --example claim_check_overhead -- \
//!     --size 5242880 --rounds 20 [--s3 's3://bucket?endpoint=http://127.0.0.1:4566&…']
//! ```

use std::time::{Duration, Instant};

use brokerkit::claim_check::ClaimCheck;
use brokerkit::{Broker, Message};

struct Figures {
    send: Vec<Duration>,
    handled: Vec<Duration>,
}

fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let median = v[v.len() / 2].as_secs_f64() * 1e3;
    let mean = v.iter().map(Duration::as_secs_f64).sum::<f64>() / v.len() as f64 * 1e3;
    (median, mean)
}

async fn run(size: usize, rounds: usize, cc: Option<ClaimCheck>) -> brokerkit::Result<Figures> {
    let broker = Broker::connect("memory://?max_payload_bytes=16777216").await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, usize)>();
    let mut hb = broker.consumer("bench").group("g").handler();
    let mut producer = broker.producer("bench");
    if let Some(cc) = &cc {
        hb = hb.claim_check(cc.clone());
        producer = producer.claim_check(cc.clone());
    }
    let stop = std::sync::Arc::new(tokio::sync::Notify::new());
    let stop_in = stop.clone();
    let running = hb
        .handle_raw(move |_ctx, m: Message| {
            let _ = tx.send((Instant::now(), m.payload.len()));
            async { Ok(()) }
        })
        .start(async move { stop_in.notified().await })
        .await?;
    let producer = producer.build().await?;
    let payload: Vec<u8> = (0..size as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let payload = brokerkit::Bytes::from(payload);
    let mut f = Figures {
        send: Vec::new(),
        handled: Vec::new(),
    };
    for round in 0..rounds + 2 {
        let started = Instant::now();
        producer.send(Message::new(payload.clone())).await?;
        let sent = started.elapsed();
        let (at, len) = rx.recv().await.expect("handled");
        assert_eq!(len, size);
        if round >= 2 {
            // The first two warm up connections and caches.
            f.send.push(sent);
            f.handled.push(at - started);
        }
    }
    stop.notify_one();
    running.join().await?;
    Ok(f)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> brokerkit::Result<()> {
    let mut size = 5 << 20;
    let mut rounds = 20;
    let mut s3: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--size" => size = args.next().and_then(|v| v.parse().ok()).expect("--size N"),
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--rounds N")
            }
            "--s3" => s3 = args.next(),
            other => panic!("unknown argument {other}"),
        }
    }
    let dir = std::env::temp_dir().join(format!("bk-cc-bench-{}", std::process::id()));
    let mut modes: Vec<(&str, Option<ClaimCheck>)> = vec![
        ("inline (no claim-check)", None),
        (
            "claim-check, file store",
            Some(
                ClaimCheck::connect(&format!("file://{}", dir.display()))
                    .await?
                    .threshold(64 << 10),
            ),
        ),
    ];
    if let Some(url) = &s3 {
        modes.push((
            "claim-check, S3 store",
            Some(ClaimCheck::connect(url).await?.threshold(64 << 10)),
        ));
    }
    println!("payload {size} bytes, {rounds} messages each, one at a time, memory:// broker");
    println!(
        "{:<26} {:>16} {:>16} {:>20} {:>20}",
        "mode", "send median ms", "send mean ms", "→handled median ms", "→handled mean ms"
    );
    for (name, cc) in modes {
        let f = run(size, rounds, cc).await?;
        let (sm, sa) = stats(f.send);
        let (hm, ha) = stats(f.handled);
        println!("{name:<26} {sm:>16.2} {sa:>16.2} {hm:>20.2} {ha:>20.2}");
    }
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
