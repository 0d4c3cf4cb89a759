//! The Redis client and the shared state: the one place that talks to Redis. Commands used:
//! `XADD` (send), `XGROUP CREATE … MKSTREAM` (subscribe), `XREADGROUP` (receive new entries),
//! `XPENDING … IDLE` + `XCLAIM` (take over entries idle past the lease: redelivery), `XACK`
//! (settle), `XCLAIM … IDLE … JUSTID` (release, delay, extend), `XINFO GROUPS` (lag), `XRANGE`
//! (browse).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use brokerkit_core::{
    BatchError, Capabilities, ClosedFlag, Error, Lag, LagAccuracy, Message, Result,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, Value};

use crate::config::RedisStreamsConfig;
use crate::error::{map, unexpected};
use crate::headers;
use crate::reply::{array, entries_of, text, Entry};

/// How long one `XREADGROUP` blocks; also bounds how late a consumer sees a stop.
pub(crate) const BLOCK: Duration = Duration::from_millis(200);

/// Acks an entry only while `ARGV[2]` (this consumer) still owns it.
const ACK_OWNED: &str = r"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
return redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])";

/// Sets an owned pending entry's idle time (`ARGV[4]` ms) without counting a delivery.
const SET_IDLE_OWNED: &str = r"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', ARGV[4], 'JUSTID')
return 1";

/// Creates group `ARGV[1]`: from the start of the stream for its first group (the backlog
/// waits for it), from new entries for the others.
const ENSURE_GROUP: &str = r"
local start = '0'
if redis.call('EXISTS', KEYS[1]) == 1 then
  local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
  for _, g in ipairs(groups) do
    if g[2] == ARGV[1] then return 0 end
  end
  if #groups > 0 then start = '$' end
end
redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[1], start, 'MKSTREAM')
return 1";

/// The connection and state shared by a backend's producers, consumers and deliveries.
pub(crate) struct Link {
    client: redis::Client,
    conn: ConnectionManager,
    /// Set by `Backend::close`.
    pub closed: ClosedFlag,
    /// The parsed URL.
    pub config: RedisStreamsConfig,
    /// What the adapter can do.
    pub caps: Arc<Capabilities>,
    /// Where released deliveries are handed back from `Drop`.
    pub runtime: tokio::runtime::Handle,
}

fn manager_config(response: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(response))
        .set_number_of_retries(1)
}

impl Link {
    /// Connects (and authenticates).
    pub async fn connect(config: RedisStreamsConfig) -> Result<Arc<Link>> {
        let client = redis::Client::open(config.client_url.as_str()).map_err(map)?;
        let conn = ConnectionManager::new_with_config(
            client.clone(),
            manager_config(Duration::from_secs(10)),
        )
        .await
        .map_err(map)?;
        Ok(Arc::new(Link {
            client,
            conn,
            closed: ClosedFlag::new(),
            caps: Arc::new(config.capabilities()),
            config,
            runtime: tokio::runtime::Handle::current(),
        }))
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// A connection of its own for one consumer's blocking reads (a blocked `XREADGROUP`
    /// holds its connection).
    pub async fn reader(&self) -> Result<ConnectionManager> {
        ConnectionManager::new_with_config(
            self.client.clone(),
            manager_config(BLOCK + Duration::from_secs(10)),
        )
        .await
        .map_err(map)
    }

    fn xadd(&self, key: &str, message: &Message) -> Result<redis::Cmd> {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(key);
        if let Some(n) = self.config.maxlen {
            cmd.arg("MAXLEN").arg("~").arg(n);
        }
        cmd.arg("*");
        for (name, value) in headers::encode(message)? {
            cmd.arg(name).arg(value);
        }
        Ok(cmd)
    }

    /// `XADD`s one message.
    pub async fn send(&self, key: &str, message: &Message) -> Result<()> {
        self.closed.check("send")?;
        let _: Value = self
            .xadd(key, message)?
            .query_async(&mut self.conn())
            .await
            .map_err(map)?;
        Ok(())
    }

    /// `XADD`s messages in one pipeline; the report names those not stored.
    pub async fn send_batch(&self, key: &str, messages: &[Message]) -> Result<()> {
        self.closed.check("send")?;
        let mut report = BatchError::new(messages.len());
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        let mut sent = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            match self.xadd(key, m) {
                Ok(cmd) => {
                    pipe.add_command(cmd);
                    sent.push(i);
                }
                Err(e) => report.fail(i, e),
            }
        }
        if !sent.is_empty() {
            match pipe
                .query_async::<Vec<redis::RedisResult<Value>>>(&mut self.conn())
                .await
            {
                Ok(results) => {
                    for (i, r) in sent.iter().zip(results) {
                        if let Err(e) = r {
                            report.fail(*i, map(e));
                        }
                    }
                }
                // Which entries Redis stored is unknown: name them all.
                Err(e) => {
                    let e = map(e);
                    for i in sent {
                        report.fail(i, Error::new(e.kind(), e.message().to_string()));
                    }
                }
            }
        }
        report.into_result()
    }

    /// Creates the consumer group (and the stream) if missing.
    pub async fn ensure_group(&self, key: &str, group: &str) -> Result<()> {
        self.closed.check("subscribe")?;
        let _: Value = Script::new(ENSURE_GROUP)
            .key(key)
            .arg(group)
            .invoke_async(&mut self.conn())
            .await
            .map_err(map)?;
        Ok(())
    }

    /// Up to `count` new entries for `consumer`, waiting at most [`BLOCK`].
    pub async fn read_new(
        conn: &mut ConnectionManager,
        key: &str,
        group: &str,
        consumer: &str,
        count: usize,
    ) -> Result<Vec<Entry>> {
        let reply: Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(group)
            .arg(consumer)
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(key)
            .arg(">")
            .query_async(conn)
            .await
            .map_err(map)?;
        let Value::Array(streams) = reply else {
            return Ok(Vec::new()); // Nil: nothing within BLOCK
        };
        let mut out = Vec::new();
        for s in streams {
            let Value::Array(mut parts) = s else {
                return Err(unexpected("XREADGROUP"));
            };
            if let Some(entries) = parts.pop() {
                out.extend(entries_of(entries)?);
            }
        }
        Ok(out)
    }

    /// Takes over up to `count` entries of the group idle past the lease (released, delayed
    /// past their delay, or left by a consumer that went away), skipping `skip` (this
    /// consumer's own live deliveries). Each comes with its attempt (deliveries so far + 1).
    pub async fn claim(
        conn: &mut ConnectionManager,
        lease: Duration,
        key: &str,
        group: &str,
        consumer: &str,
        count: usize,
        skip: &HashSet<String>,
    ) -> Result<Vec<(Entry, u32)>> {
        let idle = lease.as_millis() as u64;
        let pending: Value = redis::cmd("XPENDING")
            .arg(key)
            .arg(group)
            .arg("IDLE")
            .arg(idle)
            .arg("-")
            .arg("+")
            .arg(count + skip.len())
            .query_async(conn)
            .await
            .map_err(map)?;
        let mut candidates: Vec<(String, u32)> = Vec::new();
        for p in array(pending, "XPENDING")? {
            let p = array(p, "XPENDING")?;
            let (Some(id), Some(owner), Some(Value::Int(n))) = (p.first(), p.get(1), p.get(3))
            else {
                return Err(unexpected("XPENDING"));
            };
            let id = text(id).ok_or_else(|| unexpected("XPENDING"))?;
            let owner = text(owner).unwrap_or_default();
            if owner == consumer && skip.contains(&id) {
                continue;
            }
            candidates.push((id, u32::try_from(*n).unwrap_or(u32::MAX)));
            if candidates.len() == count {
                break;
            }
        }
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("XCLAIM");
        cmd.arg(key).arg(group).arg(consumer).arg(idle);
        for (id, _) in &candidates {
            cmd.arg(id);
        }
        let claimed: Value = cmd.query_async(conn).await.map_err(map)?;
        let mut out = Vec::new();
        for e in entries_of(claimed)? {
            if let Some((_, n)) = candidates.iter().find(|(id, _)| *id == e.id) {
                out.push((e, n.saturating_add(1)));
            }
        }
        Ok(out)
    }

    /// Acks `id` if `consumer` still owns it; `false` when its lease had expired and another
    /// consumer took it (or it was acked already).
    pub async fn ack(&self, key: &str, group: &str, consumer: &str, id: &str) -> Result<bool> {
        let n: i64 = Script::new(ACK_OWNED)
            .key(key)
            .arg(group)
            .arg(consumer)
            .arg(id)
            .invoke_async(&mut self.conn())
            .await
            .map_err(map)?;
        Ok(n == 1)
    }

    /// Sets the idle time of `id` (owned by `consumer`): `lease` or more makes it claimable
    /// now, `lease - d` after `d`, 0 restarts the lease. `false` when it is no longer owned.
    pub async fn set_idle(
        &self,
        key: &str,
        group: &str,
        consumer: &str,
        id: &str,
        idle: Duration,
    ) -> Result<bool> {
        let n: i64 = Script::new(SET_IDLE_OWNED)
            .key(key)
            .arg(group)
            .arg(consumer)
            .arg(id)
            .arg(idle.as_millis() as u64)
            .invoke_async(&mut self.conn())
            .await
            .map_err(map)?;
        Ok(n == 1)
    }

    /// The group's pending entries (delivered, not acked) plus those not delivered yet.
    pub async fn lag(&self, key: &str, group: &str) -> Result<Lag> {
        self.closed.check("lag")?;
        let mut conn = self.conn();
        if let Some(info) = self.group_info(&mut conn, key, group).await? {
            let waiting = match info.lag {
                Some(n) => n,
                // Redis cannot say (entries were deleted): count after the last delivered id.
                None => count_after(&mut conn, key, &info.last_delivered).await?,
            };
            return Ok(Lag::from_parts(
                Some(waiting),
                Some(info.pending),
                None,
                LagAccuracy::Exact,
            ));
        }
        let first_group = match redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(key)
            .query_async(&mut conn)
            .await
        {
            Ok(groups) => array(groups, "XINFO GROUPS")?.is_empty(),
            Err(_) => return Ok(Lag::zero(LagAccuracy::Exact)), // no such stream
        };
        if !first_group {
            return Ok(Lag::zero(LagAccuracy::Exact));
        }
        // The first group to subscribe starts at the beginning: it gets the backlog.
        let len: u64 = redis::cmd("XLEN")
            .arg(key)
            .query_async(&mut conn)
            .await
            .map_err(map)?;
        Ok(Lag::from_parts(
            Some(len),
            Some(0),
            None,
            LagAccuracy::Exact,
        ))
    }

    /// Up to `limit` entries the stream holds for `group` (the one `dlq redrive` reads with),
    /// oldest first, without reading them for it: its pending entries, then those after its
    /// last delivered id; every entry if the group does not exist yet.
    pub async fn browse(&self, key: &str, group: &str, limit: usize) -> Result<Vec<Entry>> {
        self.closed.check("browse")?;
        let mut conn = self.conn();
        let last = match self.group_info(&mut conn, key, group).await? {
            None => return range(&mut conn, key, "-", limit).await,
            Some(info) => info.last_delivered,
        };
        let pending: Value = redis::cmd("XPENDING")
            .arg(key)
            .arg(group)
            .arg("-")
            .arg("+")
            .arg(limit)
            .query_async(&mut conn)
            .await
            .map_err(map)?;
        let mut out = Vec::new();
        for p in array(pending, "XPENDING")? {
            let id = array(p, "XPENDING")?
                .first()
                .and_then(text)
                .ok_or_else(|| unexpected("XPENDING"))?;
            out.extend(
                range(&mut conn, key, &id, 1)
                    .await?
                    .into_iter()
                    .filter(|e| e.id == id),
            );
        }
        if out.len() < limit {
            out.extend(range(&mut conn, key, &format!("({last}"), limit - out.len()).await?);
        }
        Ok(out)
    }

    /// `group`'s figures from `XINFO GROUPS`; `None` when the stream or the group is missing.
    async fn group_info(
        &self,
        conn: &mut ConnectionManager,
        key: &str,
        group: &str,
    ) -> Result<Option<GroupInfo>> {
        let exists: i64 = redis::cmd("EXISTS")
            .arg(key)
            .query_async(conn)
            .await
            .map_err(map)?;
        if exists == 0 {
            return Ok(None);
        }
        let groups: Value = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(key)
            .query_async(conn)
            .await
            .map_err(map)?;
        for g in array(groups, "XINFO GROUPS")? {
            let fields = array(g, "XINFO GROUPS")?;
            let get = |name: &str| {
                fields
                    .chunks(2)
                    .find(|kv| text(&kv[0]).as_deref() == Some(name))
                    .and_then(|kv| kv.get(1))
            };
            if get("name").and_then(text).as_deref() != Some(group) {
                continue;
            }
            let int = |name: &str| match get(name) {
                Some(Value::Int(n)) => Some(u64::try_from(*n).unwrap_or(0)),
                _ => None,
            };
            return Ok(Some(GroupInfo {
                pending: int("pending").ok_or_else(|| unexpected("XINFO GROUPS"))?,
                lag: int("lag"),
                last_delivered: get("last-delivered-id")
                    .and_then(text)
                    .ok_or_else(|| unexpected("XINFO GROUPS"))?,
            }));
        }
        Ok(None)
    }
}

/// One consumer group as `XINFO GROUPS` describes it.
struct GroupInfo {
    pending: u64,
    /// Entries not delivered to the group yet; `None` when Redis cannot say.
    lag: Option<u64>,
    last_delivered: String,
}

/// Up to `count` entries from `from` (inclusive, or exclusive with a `(` prefix) on.
async fn range(
    conn: &mut ConnectionManager,
    key: &str,
    from: &str,
    count: usize,
) -> Result<Vec<Entry>> {
    let reply: Value = redis::cmd("XRANGE")
        .arg(key)
        .arg(from)
        .arg("+")
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await
        .map_err(map)?;
    entries_of(reply)
}

/// Entries after `last` (exclusive), counted in pages.
async fn count_after(conn: &mut ConnectionManager, key: &str, last: &str) -> Result<u64> {
    let mut from = format!("({last}");
    let mut total = 0u64;
    loop {
        let entries = range(conn, key, &from, 1000).await?;
        total += entries.len() as u64;
        match entries.last() {
            Some(e) if entries.len() == 1000 => from = format!("({}", e.id),
            _ => return Ok(total),
        }
    }
}
