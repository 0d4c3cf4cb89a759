//! `--peer`: the libraries users compare brokerkit with, run on the same workload (message
//! size, count, producers, prefetch) against the same broker, alternated with the SDK run.
//! Each broker's bench crate says how a peer runs on it and what the peer is configured with
//! where that differs from the SDK ([`PeerDriver`]).

use brokerkit::{BrokerUrl, Error, ErrorKind, Result};
use brokerkit_bench_driver::{Args, Peer, PeerDriver, PeerRun, RunResult};

/// The peer's driver on the URL's broker.
fn driver(peer: Peer, args: &Args) -> Result<PeerDriver> {
    let url = BrokerUrl::parse(&args.url)?;
    let scheme = url.scheme();
    let Some(broker) = crate::brokers::for_scheme(scheme) else {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "--peer {}: no broker bench for the {scheme}:// scheme built (build the \
                 bench with that broker's feature)",
                peer.name()
            ),
        ));
    };
    broker.peer(peer).ok_or_else(|| {
        Error::new(
            ErrorKind::Unsupported,
            format!(
                "--peer {} does not cover the {scheme}:// scheme",
                peer.name()
            ),
        )
    })
}

/// One measured run of the peer.
pub async fn run(peer: Peer, args: &Args) -> Result<RunResult> {
    match driver(peer, args)?.run {
        PeerRun::InProcess(Some(run)) => run(args).await,
        PeerRun::InProcess(None) => Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "--peer {0} needs the bench built with --features peer-{0}",
                peer.name()
            ),
        )),
        PeerRun::Script(target) => {
            let url = BrokerUrl::parse(&args.url)?;
            crate::peer_faststream::run(args, target(&url)).await
        }
    }
}

/// What the peer is configured with, and every setting that differs from the SDK run.
pub fn settings(peer: Peer, args: &Args) -> Result<&'static str> {
    Ok(driver(peer, args)?.settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(url: &str) -> Args {
        Args::parse(["--url".to_string(), url.to_string()].into_iter()).unwrap()
    }

    #[test]
    fn a_peer_states_what_it_covers() {
        assert!(settings(Peer::Omniqueue, &args("memory://"))
            .unwrap()
            .contains("InMemoryBackend"));
        let e = settings(Peer::FastStream, &args("memory://")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(
            e.to_string().contains("does not cover the memory://"),
            "{e}"
        );
        let e = settings(Peer::FastStream, &args("nope://x")).unwrap_err();
        assert!(e.to_string().contains("no broker bench"), "{e}");
    }
}
