//! Command-line arguments.

/// Usage text, the flags; the bench adds a line per broker it was built with.
pub const USAGE: &str =
    "usage: brokerkit-bench [--url URL] [--size BYTES] [--messages N] [--batch N] [--prefetch N]
  --url       broker URL (default: $BROKERKIT_URL or memory://)
  --size      payload bytes, at least 8 (default 256)
  --messages  messages to send and consume (default 100000)
  --batch     messages per send call; 1 sends one at a time (default 1)
  --prefetch  consumer prefetch (default 256)
  --no-layers send without the default layers (trace context, correlation): the bare
              adapter path, as the raw-client baseline sends
  --layers    compare the handler API with all layers off and on (correlation, trace context,
              schema validation, idempotency in memory) instead of SDK vs raw client
  --concurrency N  handlers at once in --layers mode (default 2)
  --producers N    concurrent sending tasks, each sending its share (default 1); the raw
                   baselines that say so below use as many
  --pipelined      SDK sends go one message at a time through a SendBatcher (feed, then await
                   the receipts) instead of awaiting each send or calling send_batch
  --rounds N       alternate SDK and raw runs N times and print medians and spreads (default 1)
  --peer NAME      compare with a peer library instead of the raw client, same workload:
                   omniqueue (feature peer-omniqueue) or faststream (the Python script in
                   bench/peers/, installed by bench/peers/setup.sh); prints the ratio
                   brokerkit/peer. The schemes each covers are listed below
  --receive-batch N  the consumer takes up to N deliveries per call (SDK next_batch with no
                   extra wait; omniqueue receive_all) instead of one (next / receive);
                   each delivery is still acked on its own (default 1)
  --raw-headers    the raw baselines that say so below add the three headers the default send
                   layers add (message-id and correlation-id, 36 characters each, and a
                   13-digit timestamp), to tell the headers' cost at the broker from the SDK's own";

/// The peer libraries `--peer` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// omniqueue (Rust, in this process).
    Omniqueue,
    /// FastStream (Python, a script run once per round).
    FastStream,
}

impl Peer {
    /// The peer `--peer NAME` names.
    pub fn parse(name: &str) -> std::result::Result<Peer, String> {
        match name {
            "omniqueue" => Ok(Peer::Omniqueue),
            "faststream" => Ok(Peer::FastStream),
            other => Err(format!(
                "--peer: unknown peer {other:?}; known: omniqueue, faststream"
            )),
        }
    }

    /// Its name on the command line and in the output.
    pub fn name(self) -> &'static str {
        match self {
            Peer::Omniqueue => "omniqueue",
            Peer::FastStream => "faststream",
        }
    }
}

/// Parsed arguments.
#[derive(Debug, Clone)]
pub struct Args {
    /// Broker URL.
    pub url: String,
    /// Payload bytes.
    pub size: usize,
    /// Messages to send and consume.
    pub messages: usize,
    /// Messages per send call.
    pub batch: usize,
    /// Consumer prefetch.
    pub prefetch: usize,
    /// `--layers` mode.
    pub layers: bool,
    /// Send without the default layers.
    pub no_layers: bool,
    /// Handlers at once in `--layers` mode.
    pub concurrency: usize,
    /// Concurrent sending tasks.
    pub producers: usize,
    /// SDK sends through a `SendBatcher`.
    pub pipelined: bool,
    /// Alternated rounds.
    pub rounds: usize,
    /// The peer to compare with instead of the raw client.
    pub peer: Option<String>,
    /// Raw baselines send the default layers' headers.
    pub raw_headers: bool,
    /// Deliveries per receive call.
    pub receive_batch: usize,
}

impl Args {
    /// Parses the command line (without the program name).
    pub fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut a = Args {
            url: std::env::var(brokerkit::URL_ENV).unwrap_or_else(|_| "memory://".into()),
            size: 256,
            messages: 100_000,
            batch: 1,
            prefetch: 256,
            layers: false,
            no_layers: false,
            concurrency: 2,
            producers: 1,
            pipelined: false,
            rounds: 1,
            peer: None,
            raw_headers: false,
            receive_batch: 1,
        };
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
            let number = |v: String| {
                v.parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{flag} needs a positive integer, got {v:?}"))
            };
            match flag.as_str() {
                "--url" => a.url = value()?,
                "--size" => a.size = number(value()?)?,
                "--messages" => a.messages = number(value()?)?,
                "--batch" => a.batch = number(value()?)?,
                "--prefetch" => a.prefetch = number(value()?)?,
                "--concurrency" => a.concurrency = number(value()?)?,
                "--producers" => a.producers = number(value()?)?,
                "--rounds" => a.rounds = number(value()?)?,
                "--receive-batch" => a.receive_batch = number(value()?)?,
                "--peer" => a.peer = Some(Peer::parse(&value()?)?.name().into()),
                "--pipelined" => a.pipelined = true,
                "--raw-headers" => a.raw_headers = true,
                "--layers" => a.layers = true,
                "--no-layers" => a.no_layers = true,
                "-h" | "--help" => return Err("help".into()),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        if a.size < 8 {
            return Err(
                "--size must be at least 8 (the send time is stored in the payload)".into(),
            );
        }
        if a.peer.is_some() && a.layers {
            return Err(
                "--peer compares the send/receive path; it cannot be combined with --layers".into(),
            );
        }
        if a.producers > a.messages {
            return Err("--producers must not exceed --messages".into());
        }
        Ok(a)
    }

    /// How many messages producer `p` of `producers` sends.
    pub fn share(&self, p: usize) -> usize {
        self.messages / self.producers + usize::from(p < self.messages % self.producers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn peer_names_are_checked_and_exclude_layers_mode() {
        assert_eq!(
            parse(&["--peer", "omniqueue"]).unwrap().peer.as_deref(),
            Some("omniqueue")
        );
        assert_eq!(
            parse(&["--peer", "faststream"]).unwrap().peer.as_deref(),
            Some("faststream")
        );
        let e = parse(&["--peer", "kombu"]).unwrap_err();
        assert!(e.contains("unknown peer \"kombu\""), "{e}");
        let e = parse(&["--peer", "omniqueue", "--layers"]).unwrap_err();
        assert!(e.contains("--layers"), "{e}");
        assert!(parse(&["--peer"]).unwrap_err().contains("needs a value"));
    }

    #[test]
    fn shares_add_up_to_the_messages() {
        let a = parse(&["--messages", "10", "--producers", "3"]).unwrap();
        assert_eq!((0..3).map(|p| a.share(p)).collect::<Vec<_>>(), [4, 3, 3]);
    }
}
