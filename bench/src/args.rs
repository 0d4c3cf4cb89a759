//! Command-line arguments.

/// Usage text.
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
  --producers N    concurrent sending tasks, each sending its share (default 1); the NATS and
                   RabbitMQ raw baselines use as many (RabbitMQ: one channel each)
  --pipelined      SDK sends go one message at a time through a SendBatcher (feed, then await
                   the receipts) instead of awaiting each send or calling send_batch
  --rounds N       alternate SDK and raw runs N times and print medians and spreads (default 1)";

/// Parsed arguments.
#[derive(Debug, Clone)]
pub struct Args {
    pub url: String,
    pub size: usize,
    pub messages: usize,
    pub batch: usize,
    pub prefetch: usize,
    pub layers: bool,
    pub no_layers: bool,
    pub concurrency: usize,
    pub producers: usize,
    pub pipelined: bool,
    pub rounds: usize,
}

impl Args {
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
                "--pipelined" => a.pipelined = true,
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
