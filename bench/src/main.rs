//! `brokerkit-bench`: publish+consume throughput and latency through the SDK, and through the
//! broker's raw client where a baseline exists, in the same run.
//!
//! ```text
//! cargo run --release -p brokerkit-bench -- --url memory:// --size 256 --messages 1000000
//! ```
//! The last line of output is one JSON object: `url` (redacted), `messages`, `size`, `batch`,
//! `producers`, `rounds`, `sdk_msgs_per_s` (median of the rounds) and its spread, `p50_us`,
//! `p99_us`, and `raw_msgs_per_s`/`ratio` where a baseline exists (ratio of the medians);
//! with `--peer NAME`, `peer`, `peer_msgs_per_s` and `ratio` = brokerkit/peer instead; and
//! `peak_rss_mib`, the process's peak resident memory (Linux `VmHWM`); `allocator`, the
//! allocator serving the process (`system`, or a preloaded `jemalloc`, `mimalloc`, `tcmalloc`).

mod allocator;
mod baseline;
mod brokers;
mod layers_run;
mod memory;
mod peer;
mod peer_faststream;
mod rss;
mod sdk_run;

use brokerkit::BrokerUrl;
use brokerkit_bench_driver::{args, measure, Peer};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = match args::Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}\n\n{}{}", args::USAGE, brokers::usage());
            std::process::exit(2);
        }
    };
    let shown = BrokerUrl::parse(&args.url)
        .map(|u| u.redacted())
        .unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2);
        });
    let allocator = allocator::name();
    println!(
        "brokerkit-bench: {} messages of {} bytes, batch {}, on {shown} (allocator: {allocator})",
        args.messages, args.size, args.batch
    );
    if args.layers {
        return layers_main(&args, &shown, allocator).await;
    }
    let peer = args
        .peer
        .as_deref()
        .map(|p| Peer::parse(p).expect("checked by Args::parse"));
    if let Some(peer) = peer {
        let settings = peer::settings(peer, &args).unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2);
        });
        println!("peer {}: {settings}", peer.name());
    }
    let mut sdk_runs = Vec::new();
    let mut raw_runs = Vec::new();
    for round in 0..args.rounds {
        // Alternate which goes first, so drift on a noisy machine hits both alike.
        let raw_first = round % 2 == 1;
        if raw_first {
            raw_runs.extend(other_round(&args, peer).await);
        }
        let sdk = sdk_run::run(&args).await.unwrap_or_else(|e| {
            eprintln!("SDK run failed: {e}");
            std::process::exit(1);
        });
        sdk.print("sdk");
        sdk_runs.push(sdk);
        if !raw_first {
            raw_runs.extend(other_round(&args, peer).await);
        }
    }
    let sdk = median_run(sdk_runs);
    let mut json = serde_json::json!({
        "url": shown,
        "messages": args.messages,
        "size": args.size,
        "batch": args.batch,
        "producers": args.producers,
        "pipelined": args.pipelined,
        "no_layers": args.no_layers,
        "raw_headers": args.raw_headers,
        "rounds": args.rounds,
        "allocator": allocator,
        "sdk_msgs_per_s": sdk.median.round(),
        "sdk_spread": [sdk.min.round(), sdk.max.round()],
        "p50_us": sdk.run.percentile_us(50.0),
        "p99_us": sdk.run.percentile_us(99.0),
    });
    if let (Some(peer), false) = (peer, raw_runs.is_empty()) {
        let other = median_run(raw_runs);
        let ratio = sdk.median / other.median;
        println!(
            "median of {} rounds: brokerkit {:.0} msgs/s ({:.0}..{:.0}), {} {:.0} msgs/s ({:.0}..{:.0}), ratio brokerkit/{} {ratio:.3}",
            args.rounds, sdk.median, sdk.min, sdk.max, peer.name(), other.median, other.min, other.max, peer.name()
        );
        json["peer"] = peer.name().into();
        json["peer_msgs_per_s"] = other.median.round().into();
        json["peer_spread"] = serde_json::json!([other.min.round(), other.max.round()]);
        json["peer_p50_us"] = other.run.percentile_us(50.0).into();
        json["peer_p99_us"] = other.run.percentile_us(99.0).into();
        json["ratio"] = ((ratio * 1000.0).round() / 1000.0).into();
    } else if raw_runs.is_empty() {
        println!("(no raw-client baseline for this scheme)");
    } else {
        let raw = median_run(raw_runs);
        let ratio = sdk.median / raw.median;
        println!(
            "median of {} rounds: sdk {:.0} msgs/s ({:.0}..{:.0}), raw {:.0} msgs/s ({:.0}..{:.0}), ratio sdk/raw {ratio:.3}",
            args.rounds, sdk.median, sdk.min, sdk.max, raw.median, raw.min, raw.max
        );
        json["raw_msgs_per_s"] = raw.median.round().into();
        json["raw_spread"] = serde_json::json!([raw.min.round(), raw.max.round()]);
        json["raw_p50_us"] = raw.run.percentile_us(50.0).into();
        json["raw_p99_us"] = raw.run.percentile_us(99.0).into();
        json["ratio"] = ((ratio * 1000.0).round() / 1000.0).into();
    }
    let peak = rss::peak_kib();
    println!("peak RSS of the process: {}", rss::show(peak));
    json["peak_rss_mib"] = mib(peak);
    println!("{json}");
}

/// KiB as MiB with one decimal for the JSON line (null when unknown).
fn mib(kib: Option<u64>) -> serde_json::Value {
    kib.map_or(serde_json::Value::Null, |k| {
        ((k as f64 / 1024.0 * 10.0).round() / 10.0).into()
    })
}

/// The run beside the SDK's: the peer's with `--peer`, else the raw client's (none where
/// the scheme has no baseline), printed.
async fn other_round(args: &args::Args, peer: Option<Peer>) -> Option<measure::RunResult> {
    let Some(peer) = peer else {
        return raw_round(args).await;
    };
    match peer::run(peer, args).await {
        Ok(run) => {
            run.print(peer.name());
            Some(run)
        }
        Err(e) => {
            eprintln!("{} run failed: {e}", peer.name());
            std::process::exit(1);
        }
    }
}

/// One raw-client run (none where the scheme has no baseline), printed.
async fn raw_round(args: &args::Args) -> Option<measure::RunResult> {
    match baseline::run(args).await {
        Ok(Some(raw)) => {
            raw.print("raw");
            Some(raw)
        }
        Ok(None) => None,
        Err(e) => {
            eprintln!("raw-client run failed: {e}");
            std::process::exit(1);
        }
    }
}

/// The median run of several (by throughput) with the spread.
struct Median {
    run: measure::RunResult,
    median: f64,
    min: f64,
    max: f64,
}

fn median_run(mut runs: Vec<measure::RunResult>) -> Median {
    runs.sort_by(|a, b| a.msgs_per_s().total_cmp(&b.msgs_per_s()));
    let min = runs.first().map_or(0.0, |r| r.msgs_per_s());
    let max = runs.last().map_or(0.0, |r| r.msgs_per_s());
    let run = runs.swap_remove(runs.len() / 2);
    Median {
        median: run.msgs_per_s(),
        run,
        min,
        max,
    }
}

async fn layers_main(args: &args::Args, shown: &str, allocator: &str) {
    let mut offs = Vec::new();
    let mut ons = Vec::new();
    let mut ratios = Vec::new();
    let (mut peak_off, mut peak_on) = (None, None);
    for round in 0..args.rounds {
        let order = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for on in order {
            // Each run's own peak: the high-water mark restarts at the current RSS.
            let reset = rss::reset_peak();
            let r = layers_run::run(args, on).await.unwrap_or_else(|e| {
                eprintln!("layers run failed: {e}");
                std::process::exit(1);
            });
            r.print(if on { "on" } else { "off" });
            let peak = rss::peak_kib();
            let slot = if on { &mut peak_on } else { &mut peak_off };
            *slot = (*slot).max(peak);
            println!(
                "      peak RSS {} during this run, {} after it{}",
                rss::show(peak),
                rss::show(rss::current_kib()),
                if reset {
                    ""
                } else {
                    " (could not reset the high-water mark: process peak)"
                }
            );
            if on {
                ons.push(r);
            } else {
                offs.push(r);
            }
        }
        ratios.push(ons[round].msgs_per_s() / offs[round].msgs_per_s());
    }
    ratios.sort_by(f64::total_cmp);
    let ratio = ratios[ratios.len() / 2];
    let (off, on) = (median_run(offs), median_run(ons));
    println!(
        "median of {} rounds: off {:.0} msgs/s, on {:.0} msgs/s; ratio layers on/off {ratio:.3} (rounds {:.3}..{:.3})",
        args.rounds,
        off.median,
        on.median,
        ratios[0],
        ratios[ratios.len() - 1]
    );
    let json = serde_json::json!({
        "url": shown,
        "mode": "layers",
        "allocator": allocator,
        "messages": args.messages,
        "size": args.size,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "sdk_msgs_per_s": on.median.round(),
        "p50_us": on.run.percentile_us(50.0),
        "p99_us": on.run.percentile_us(99.0),
        "layers_off_msgs_per_s": off.median.round(),
        "layers_off_p50_us": off.run.percentile_us(50.0),
        "layers_off_p99_us": off.run.percentile_us(99.0),
        "ratio": (ratio * 1000.0).round() / 1000.0,
        "ratio_spread": [ratios[0], ratios[ratios.len() - 1]],
        "peak_rss_on_mib": mib(peak_on),
        "peak_rss_off_mib": mib(peak_off),
    });
    println!(
        "peak RSS: layers on {}, off {} (largest of the rounds)",
        rss::show(peak_on),
        rss::show(peak_off)
    );
    println!("{json}");
}
