//! `brokerkit-bench`: publish+consume throughput and latency through the SDK, and through the
//! broker's raw client where a baseline exists, in the same run.
//!
//! ```text
//! cargo run --release -p brokerkit-bench -- --url memory:// --size 256 --messages 1000000
//! ```
//! The last line of output is one JSON object: `url` (redacted), `messages`, `size`, `batch`,
//! `producers`, `rounds`, `sdk_msgs_per_s` (median of the rounds) and its spread, `p50_us`,
//! `p99_us`, and `raw_msgs_per_s`/`ratio` where a baseline exists (ratio of the medians).

mod args;
mod baseline;
mod layers_run;
mod measure;
#[cfg(feature = "kafka")]
mod raw_kafka;
#[cfg(feature = "nats")]
mod raw_nats;
#[cfg(feature = "rabbitmq")]
mod raw_rabbitmq;
#[cfg(feature = "sqs")]
mod raw_sqs;
mod sdk_run;

use brokerkit::BrokerUrl;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = match args::Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}\n\n{}", args::USAGE);
            std::process::exit(2);
        }
    };
    let shown = BrokerUrl::parse(&args.url)
        .map(|u| u.redacted())
        .unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2);
        });
    println!(
        "brokerkit-bench: {} messages of {} bytes, batch {}, on {shown}",
        args.messages, args.size, args.batch
    );
    if args.layers {
        return layers_main(&args, &shown).await;
    }
    let mut sdk_runs = Vec::new();
    let mut raw_runs = Vec::new();
    for round in 0..args.rounds {
        // Alternate which goes first, so drift on a noisy machine hits both alike.
        let raw_first = round % 2 == 1;
        if raw_first {
            raw_runs.extend(raw_round(&args).await);
        }
        let sdk = sdk_run::run(&args).await.unwrap_or_else(|e| {
            eprintln!("SDK run failed: {e}");
            std::process::exit(1);
        });
        sdk.print("sdk");
        sdk_runs.push(sdk);
        if !raw_first {
            raw_runs.extend(raw_round(&args).await);
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
        "rounds": args.rounds,
        "sdk_msgs_per_s": sdk.median.round(),
        "sdk_spread": [sdk.min.round(), sdk.max.round()],
        "p50_us": sdk.run.percentile_us(50.0),
        "p99_us": sdk.run.percentile_us(99.0),
    });
    if raw_runs.is_empty() {
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
    println!("{json}");
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

async fn layers_main(args: &args::Args, shown: &str) {
    let mut offs = Vec::new();
    let mut ons = Vec::new();
    let mut ratios = Vec::new();
    for round in 0..args.rounds {
        let order = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for on in order {
            let r = layers_run::run(args, on).await.unwrap_or_else(|e| {
                eprintln!("layers run failed: {e}");
                std::process::exit(1);
            });
            r.print(if on { "on" } else { "off" });
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
    });
    println!("{json}");
}
