//! `brokerkit-bench`: publish+consume throughput and latency through the SDK, and through the
//! broker's raw client where a baseline exists, in the same run.
//!
//! ```text
//! cargo run --release -p brokerkit-bench -- --url memory:// --size 256 --messages 1000000
//! ```
//! The last line of output is one JSON object: `url` (redacted), `messages`, `size`, `batch`,
//! `sdk_msgs_per_s`, `p50_us`, `p99_us`, and `raw_msgs_per_s`/`ratio` where a baseline exists.

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
    let sdk = match sdk_run::run(&args).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("SDK run failed: {e}");
            std::process::exit(1);
        }
    };
    sdk.print("sdk");
    let raw = match baseline::run(&args).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("raw-client run failed: {e}");
            std::process::exit(1);
        }
    };
    let mut json = serde_json::json!({
        "url": shown,
        "messages": args.messages,
        "size": args.size,
        "batch": args.batch,
        "sdk_msgs_per_s": sdk.msgs_per_s().round(),
        "p50_us": sdk.percentile_us(50.0),
        "p99_us": sdk.percentile_us(99.0),
    });
    match raw {
        Some(raw) => {
            raw.print("raw");
            let ratio = sdk.msgs_per_s() / raw.msgs_per_s();
            println!("ratio sdk/raw: {ratio:.3}");
            json["raw_msgs_per_s"] = raw.msgs_per_s().round().into();
            json["raw_p50_us"] = raw.percentile_us(50.0).into();
            json["raw_p99_us"] = raw.percentile_us(99.0).into();
            json["ratio"] = ((ratio * 1000.0).round() / 1000.0).into();
        }
        None => println!("(no raw-client baseline for this scheme)"),
    }
    println!("{json}");
}

async fn layers_main(args: &args::Args, shown: &str) {
    let run = |on| layers_run::run(args, on);
    let (off, on) = match (run(false).await, run(true).await) {
        (Ok(off), Ok(on)) => (off, on),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("layers run failed: {e}");
            std::process::exit(1);
        }
    };
    off.print("off");
    on.print("on");
    let ratio = on.msgs_per_s() / off.msgs_per_s();
    println!("ratio layers on/off: {ratio:.3}");
    let json = serde_json::json!({
        "url": shown,
        "mode": "layers",
        "messages": args.messages,
        "size": args.size,
        "concurrency": args.concurrency,
        "sdk_msgs_per_s": on.msgs_per_s().round(),
        "p50_us": on.percentile_us(50.0),
        "p99_us": on.percentile_us(99.0),
        "layers_off_msgs_per_s": off.msgs_per_s().round(),
        "layers_off_p50_us": off.percentile_us(50.0),
        "layers_off_p99_us": off.percentile_us(99.0),
        "ratio": (ratio * 1000.0).round() / 1000.0,
    });
    println!("{json}");
}
