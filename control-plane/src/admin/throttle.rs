//! Slows password guessing at `Login`, the one RPC open without a token.
//!
//! - At most a few Argon2 verifications run at once (each takes ~19 MiB and
//!   a core for a while).
//! - Attempts are counted *before* their password is verified: a pair of
//!   (source address, username) with `MAX_PAIR_FAILURES` failures, counting
//!   the attempts still being verified, is refused for `LOCKOUT`, so forty
//!   concurrent guesses get five verifications, not forty.
//! - A source address with `MAX_SOURCE_FAILURES` failures over any names is
//!   refused too, so spraying names from one place gets nowhere.
//! - A username with `MAX_USER_FAILURES` failures, from anywhere, is refused
//!   from everywhere for the rest of `LOCKOUT`: sources can be many (or
//!   forged through a trusted proxy), and this bounds the guesses at any one
//!   account to `MAX_USER_FAILURES` a minute. The price: a stranger can keep
//!   a user from signing in with a password (not from their sessions, API
//!   tokens or SSO) by failing for them twenty times a minute.
//! - Usernames longer than `MAX_USERNAME` never reach the table (no such user
//!   can exist), and the table holds at most `MAX_ENTRIES`, so memory stays
//!   bounded whatever is sent. A full table first forgets windows that are
//!   over, then the counts with the fewest failures (a tenth at a time), and
//!   never a count that is refusing or has an attempt being verified: a
//!   stranger flooding it with new sources and names must not wipe the lock
//!   on the account being guessed at. A table full of refusing counts refuses
//!   new ones too (for a second, without scanning again) rather than grow.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, SemaphorePermit};

pub const MAX_USERNAME: usize = 64;
const MAX_PAIR_FAILURES: u32 = 5;
const MAX_SOURCE_FAILURES: u32 = 20;
const MAX_USER_FAILURES: u32 = 20;
const LOCKOUT: Duration = Duration::from_secs(60);
const MAX_ENTRIES: usize = 50_000;
/// Concurrent password verifications, process-wide.
const VERIFICATIONS: usize = 4;

static GATE: Semaphore = Semaphore::const_new(VERIFICATIONS);
static LOGINS: LazyLock<Throttle> = LazyLock::new(Throttle::default);

/// The process' login throttle.
pub fn logins() -> &'static Throttle {
    &LOGINS
}

/// Failure counts per (source, username) and per source.
#[derive(Default)]
pub struct Throttle {
    table: Mutex<Table>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Pair(IpAddr, String),
    Source(IpAddr),
    User(String),
}

impl Key {
    /// The failures at which this count refuses.
    fn max(&self) -> u32 {
        match self {
            Key::Pair(..) => MAX_PAIR_FAILURES,
            Key::Source(_) => MAX_SOURCE_FAILURES,
            Key::User(_) => MAX_USER_FAILURES,
        }
    }
}

/// Which count refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// This username from this source.
    Pair,
    /// This source, over any usernames.
    Source,
    /// This username, from any source.
    User,
    /// The table is full of counts that are refusing: every new one is.
    Full,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Pair => "address and user",
            Limit::Source => "address",
            Limit::User => "user",
            Limit::Full => "server",
        }
    }
}

/// A refused attempt: for how long, by which count, and whether it is the
/// first refusal of that count's window (to be reported once, not per
/// attempt).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub secs: u64,
    pub limit: Limit,
    pub first: bool,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    /// Attempts counted but not yet decided.
    pending: u32,
    /// When the first failure of the current window happened.
    since: Instant,
    /// Whether a refusal was reported in this window.
    reported: bool,
}

struct Table {
    entries: HashMap<Key, Entry>,
    capacity: usize,
    /// Until when a full table with nothing it may forget refuses new
    /// counts without looking again (a scan per attempt would be the
    /// stranger's lever on the lock's holder).
    full_until: Option<Instant>,
    /// The table just became full: the next refusal is reported (audited).
    full_news: bool,
}

impl Default for Table {
    fn default() -> Self {
        Table::with_capacity(MAX_ENTRIES)
    }
}

impl Table {
    fn with_capacity(capacity: usize) -> Self {
        Table {
            entries: HashMap::new(),
            capacity,
            full_until: None,
            full_news: false,
        }
    }

    /// Makes room for one more count, or says there is none.
    fn make_room(&mut self, now: Instant) -> bool {
        if self.entries.len() < self.capacity {
            return true;
        }
        if self.full_until.is_some_and(|t| now < t) {
            return false;
        }
        self.entries
            .retain(|_, e| e.pending > 0 || now.duration_since(e.since) < LOCKOUT);
        if self.entries.len() >= self.capacity {
            // A tenth at once, so that a table kept full (by names sprayed
            // from many sources) costs a scan per thousands of new entries,
            // not per entry. Fewest failures first, then the oldest: pushing
            // out a count with nineteen failures takes a table of counts
            // with as many.
            let mut idle: Vec<(u32, Instant, Key)> = self
                .entries
                .iter()
                .filter(|(k, e)| e.pending == 0 && e.failures < k.max())
                .map(|(k, e)| (e.failures, e.since, k.clone()))
                .collect();
            let n = (self.capacity / 10).max(1).min(idle.len());
            if n > 0 {
                idle.select_nth_unstable_by_key(n - 1, |(failures, since, _)| (*failures, *since));
                for (_, _, k) in &idle[..n] {
                    self.entries.remove(k);
                }
            }
        }
        let room = self.entries.len() < self.capacity;
        if !room && self.full_until.is_none() {
            self.full_news = true;
        }
        self.full_until = (!room).then(|| now + Duration::from_secs(1));
        room
    }

    /// The count for `key`, made if need be; `None` when the table has no
    /// room for it.
    fn entry(&mut self, key: Key, now: Instant) -> Option<&mut Entry> {
        if !self.entries.contains_key(&key) && !self.make_room(now) {
            return None;
        }
        let fresh = Entry {
            failures: 0,
            pending: 0,
            since: now,
            reported: false,
        };
        let e = self.entries.entry(key).or_insert(fresh);
        if e.pending == 0 && now.duration_since(e.since) >= LOCKOUT {
            *e = fresh;
        }
        Some(e)
    }

    /// A refusal for want of room; the first since the table filled is
    /// reported.
    fn full(&mut self) -> Refused {
        Refused {
            secs: 1,
            limit: Limit::Full,
            first: std::mem::take(&mut self.full_news),
        }
    }

    /// Why `key` is refused if one more attempt would pass its limit.
    fn locked(&mut self, key: &Key, limit: Limit, now: Instant) -> Option<Refused> {
        let Some(e) = self.entry(key.clone(), now) else {
            return Some(self.full());
        };
        if e.failures + e.pending < key.max() {
            return None;
        }
        let first = !std::mem::replace(&mut e.reported, true);
        Some(Refused {
            secs: LOCKOUT
                .saturating_sub(now.duration_since(e.since))
                .as_secs()
                .max(1),
            limit,
            first,
        })
    }
}

/// A counted login attempt. Dropped without a verdict (an error on the way),
/// it counts as neither success nor failure.
#[must_use]
pub struct Attempt {
    throttle: &'static Throttle,
    pair: Key,
    source: Key,
    user: Key,
    decided: bool,
}

impl Throttle {
    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts an attempt for `username` from `source`, or says why and for
    /// how long that is refused.
    pub fn begin(&'static self, source: IpAddr, username: &str) -> Result<Attempt, Refused> {
        let source = network_of(source);
        let now = Instant::now();
        let pair = Key::Pair(source, username.to_string());
        let src = Key::Source(source);
        let user = Key::User(username.to_string());
        let mut t = self.table();
        let refused = t
            .locked(&src, Limit::Source, now)
            .or_else(|| t.locked(&pair, Limit::Pair, now))
            .or_else(|| t.locked(&user, Limit::User, now));
        if let Some(r) = refused {
            return Err(r);
        }
        // Made just now, so still there unless a later one pushed it out
        // (it had no failures): made again, it is held by its attempt.
        let mut counted = Vec::with_capacity(3);
        for key in [&pair, &src, &user] {
            match t.entry(key.clone(), now) {
                Some(e) => {
                    e.pending += 1;
                    counted.push(key);
                }
                None => {
                    for k in counted {
                        if let Some(e) = t.entries.get_mut(k) {
                            e.pending = e.pending.saturating_sub(1);
                        }
                    }
                    return Err(t.full());
                }
            }
        }
        Ok(Attempt {
            throttle: self,
            pair,
            source: src,
            user,
            decided: false,
        })
    }
}

impl Attempt {
    pub fn succeeded(mut self) {
        self.decided = true;
        let mut t = self.throttle.table();
        t.entries.remove(&self.pair);
        // The user's count is kept: a success between guesses from
        // elsewhere must not give the guesser another round.
        for key in [&self.source, &self.user] {
            if let Some(e) = t.entries.get_mut(key) {
                e.pending = e.pending.saturating_sub(1);
            }
        }
    }

    pub fn failed(mut self) {
        self.decided = true;
        let mut t = self.throttle.table();
        for key in [&self.pair, &self.source, &self.user] {
            if let Some(e) = t.entries.get_mut(key) {
                e.pending = e.pending.saturating_sub(1);
                e.failures += 1;
            }
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if self.decided {
            return;
        }
        let mut t = self.throttle.table();
        for key in [&self.pair, &self.source, &self.user] {
            if let Some(e) = t.entries.get_mut(key) {
                e.pending = e.pending.saturating_sub(1);
            }
        }
    }
}

/// The source a failure counts against: an IPv4 address, or an IPv6
/// address's /64 (one subscriber's network: counted per address, a /64
/// would give an attacker endless sources).
pub fn network_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut o = v6.octets();
            o[8..].fill(0);
            IpAddr::from(o)
        }
        v4 => v4,
    }
}

/// Waits for a verification slot.
pub async fn verification_slot() -> Option<SemaphorePermit<'static>> {
    GATE.acquire().await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([198, 51, 100, last])
    }

    /// A throttle of the test's own, so tests in parallel do not meet.
    fn fresh() -> &'static Throttle {
        Box::leak(Box::default())
    }

    #[test]
    fn attempts_count_before_they_are_verified() {
        let th = fresh();
        let name = "throttle-concurrent";
        let held: Vec<Attempt> = (0..MAX_PAIR_FAILURES)
            .map(|_| th.begin(ip(1), name).expect("under the limit"))
            .collect();
        // Five in flight: the sixth is refused before any verification.
        assert!(th.begin(ip(1), name).is_err());
        // Another source is not affected.
        let other = th.begin(ip(2), name).expect("other sources go on");
        other.succeeded();
        for a in held {
            a.failed();
        }
        assert!(th.begin(ip(1), name).is_err());
    }

    #[test]
    fn an_ipv6_network_counts_as_one_source() {
        let th = fresh();
        let v6 = |host: u16| IpAddr::from([0x2001, 0xdb8, 0, 7, 0, 0, 0, host]);
        for host in 0..MAX_SOURCE_FAILURES as u16 {
            let name = format!("guess-{host}");
            th.begin(v6(host), &name).expect("under the limit").failed();
        }
        // Another address of the same /64 is the same source...
        assert!(th.begin(v6(999), "anyone").is_err());
        // ... another /64 is not, nor is an IPv4 peer written as IPv6.
        let elsewhere = IpAddr::from([0x2001, 0xdb8, 0, 8, 0, 0, 0, 1]);
        th.begin(elsewhere, "anyone")
            .expect("other network")
            .succeeded();
        let mapped: IpAddr = "::ffff:198.51.100.9".parse().unwrap();
        th.begin(mapped, "anyone")
            .expect("an IPv4 source")
            .succeeded();
    }

    #[test]
    fn success_clears_the_pair_and_drops_release() {
        let th = fresh();
        let name = "throttle-success";
        for _ in 0..MAX_PAIR_FAILURES - 1 {
            th.begin(ip(3), name).unwrap().failed();
        }
        th.begin(ip(3), name).unwrap().succeeded();
        for _ in 0..MAX_PAIR_FAILURES - 1 {
            th.begin(ip(3), name).unwrap().failed();
        }
        // An attempt dropped without a verdict does not count.
        drop(th.begin(ip(3), name).unwrap());
        th.begin(ip(3), name).unwrap().failed();
        let r = th.begin(ip(3), name).err().expect("locked");
        assert!((1..=60).contains(&r.secs));
        assert_eq!((r.limit, r.first), (Limit::Pair, true));
        // Reported once per window, not per attempt.
        assert!(!th.begin(ip(3), name).err().expect("locked").first);
    }

    #[test]
    fn a_spraying_source_is_locked_over_all_names() {
        let th = fresh();
        for i in 0..MAX_SOURCE_FAILURES {
            th.begin(ip(4), &format!("spray-{i}")).unwrap().failed();
        }
        assert!(th.begin(ip(4), "admin").is_err());
        assert!(th.begin(ip(5), "admin").is_ok());
    }

    /// Guesses at one user from many sources (or one source forging many
    /// through a trusted proxy) stop after `MAX_USER_FAILURES`, from every
    /// source; other users are not affected.
    #[test]
    fn a_user_guessed_at_from_many_sources_is_throttled_everywhere() {
        let th = fresh();
        let name = "throttle-many-sources";
        for i in 0..MAX_USER_FAILURES {
            // Four per source: under the pair's and the source's limits.
            let src = IpAddr::from([203, 0, 113, (i / 4) as u8]);
            th.begin(src, name).expect("under the limit").failed();
        }
        let r = th.begin(ip(77), name).err().expect("locked everywhere");
        assert_eq!((r.limit, r.first), (Limit::User, true));
        assert!((1..=60).contains(&r.secs));
        assert!(!th.begin(ip(78), name).err().expect("still").first);
        th.begin(ip(77), "someone-else")
            .expect("other users go on")
            .succeeded();
    }

    /// A throttle whose table holds `capacity` counts.
    fn small(capacity: usize) -> &'static Throttle {
        Box::leak(Box::new(Throttle {
            table: Mutex::new(Table::with_capacity(capacity)),
        }))
    }

    fn sprayer(i: usize) -> IpAddr {
        IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8])
    }

    #[test]
    fn the_table_stays_bounded() {
        let th = small(1_000);
        for i in 0..1_500 {
            th.begin(sprayer(i), &format!("bounded-{i}"))
                .unwrap()
                .failed();
        }
        assert!(th.table().entries.len() <= 1_000);
    }

    /// The probe of stop 32: a guesser locked out of one account floods the
    /// table with new sources (attempts at a name it locked itself, refused
    /// before any verification, and failures at fresh names), hoping the
    /// victim's count is pushed out with the oldest. It is not, and neither
    /// is a count one failure short of its lock.
    #[test]
    fn a_flood_of_new_sources_does_not_lift_a_lock() {
        let th = small(1_000);
        let guess = |src: IpAddr, name: &str| th.begin(src, name).map(Attempt::failed);
        for i in 0..MAX_USER_FAILURES {
            guess(IpAddr::from([203, 0, 113, (i / 4) as u8]), "victim").expect("under the limit");
        }
        for i in 0..MAX_USER_FAILURES - 1 {
            guess(IpAddr::from([203, 0, 114, (i / 4) as u8]), "nearly").expect("under the limit");
        }
        for i in 0..MAX_USER_FAILURES {
            guess(IpAddr::from([203, 0, 115, (i / 4) as u8]), "throwaway").expect("under");
        }
        for i in 0..5_000 {
            let name = if i % 2 == 0 {
                "throwaway".to_string()
            } else {
                format!("fresh-{i}")
            };
            let _ = guess(sprayer(i), &name);
        }
        let r = th.begin(ip(90), "victim").err().expect("still locked");
        assert_eq!(r.limit, Limit::User);
        guess(ip(91), "nearly").expect("its twentieth");
        let r = th.begin(ip(92), "nearly").err().expect("locked at twenty");
        assert_eq!(r.limit, Limit::User);
        assert!(th.table().entries.len() <= 1_000);
    }

    /// Counts that are refusing are never forgotten: a table full of them
    /// refuses new counts (bounded memory, at the price of strangers'
    /// sign-ins for as long as the flood's windows last).
    #[test]
    fn a_table_full_of_refusing_counts_refuses_new_ones() {
        let th = small(100);
        let mut full = None;
        'flood: for s in 0..1_000 {
            for n in 0..4 {
                for _ in 0..MAX_PAIR_FAILURES {
                    match th.begin(sprayer(s), &format!("pair-{s}-{n}")) {
                        Ok(a) => a.failed(),
                        Err(r) if r.limit == Limit::Full => {
                            full = Some(r.first);
                            break 'flood;
                        }
                        Err(_) => {}
                    }
                }
            }
        }
        // The first refusal for want of room is reported (audited), the
        // next ones are not.
        assert_eq!(full, Some(true), "the table filled with refusing counts");
        let r = th
            .begin(sprayer(0), "anyone")
            .err()
            .expect("the first source is still locked");
        assert_eq!(r.limit, Limit::Source);
        let r = th
            .begin(ip(93), "anyone")
            .err()
            .expect("no room for a new source");
        assert_eq!((r.limit, r.first), (Limit::Full, false));
        assert!(th.table().entries.len() <= 100);
    }
}
