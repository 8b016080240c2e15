//! One app's figures by minute: requests, client and server errors, a
//! histogram of service times (fixed buckets, so a minute costs the same
//! however busy it was), and each process type's memory and CPU. At most
//! [`KEEP_MINUTES`] minutes are kept; percentiles are read from the
//! histograms, interpolated within a bucket.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// A day of minutes.
pub const KEEP_MINUTES: i64 = 24 * 60;

/// The upper bounds of the service-time buckets, in milliseconds; one more
/// bucket counts what took longer than the last.
pub const BOUNDS_MS: [u32; 21] = [1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000, 30000];
/// Buckets in a histogram.
pub const BUCKETS: usize = BOUNDS_MS.len() + 1;

/// Service times counted by bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histogram(pub Vec<u64>);

impl Histogram {
    fn bucket(ms: u64) -> usize {
        BOUNDS_MS.iter().position(|b| ms <= u64::from(*b)).unwrap_or(BOUNDS_MS.len())
    }

    pub fn add(&mut self, ms: u64) {
        if self.0.len() != BUCKETS {
            self.0.resize(BUCKETS, 0);
        }
        self.0[Self::bucket(ms)] += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        if self.0.len() != BUCKETS {
            self.0.resize(BUCKETS, 0);
        }
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a += b;
        }
    }

    pub fn count(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The `q` quantile (0 to 1) in milliseconds, interpolated within its
    /// bucket; None with nothing counted. Beyond the last bound it is the
    /// last bound (the histogram cannot say more).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * n as f64).max(1.0);
        let mut seen = 0u64;
        for (i, c) in self.0.iter().enumerate() {
            if *c == 0 {
                continue;
            }
            if (seen + c) as f64 >= rank {
                let lower = if i == 0 { 0.0 } else { f64::from(BOUNDS_MS[i - 1]) };
                let Some(upper) = BOUNDS_MS.get(i).map(|b| f64::from(*b)) else { return Some(lower) };
                let within = (rank - seen as f64) / *c as f64;
                return Some(lower + (upper - lower) * within);
            }
            seen += c;
        }
        BOUNDS_MS.last().map(|b| f64::from(*b))
    }
}

/// A process type's dynos in one minute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TypeUse {
    /// The most memory one of its dynos used, in bytes.
    pub memory_max: u64,
    /// Their memory limit, in bytes.
    pub memory_limit: u64,
    /// CPU (percent of one core) summed over samples, and how many.
    pub cpu_sum: f64,
    pub samples: u32,
}

impl TypeUse {
    pub fn cpu(&self) -> Option<f64> {
        (self.samples > 0).then(|| self.cpu_sum / f64::from(self.samples))
    }
}

/// One minute of an app.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Minute {
    /// Its start, in Unix seconds (a multiple of 60).
    pub at: i64,
    pub requests: u64,
    pub client_errors: u64,
    pub server_errors: u64,
    pub service: Histogram,
    /// By process type.
    pub dynos: BTreeMap<String, TypeUse>,
}

impl Minute {
    fn new(at: i64) -> Self {
        Self { at, ..Default::default() }
    }
}

/// The minute `unix` falls in.
pub fn minute_of(unix: i64) -> i64 {
    unix - unix.rem_euclid(60)
}

/// An app's minutes, oldest first, none older than a day before the
/// newest.
#[derive(Debug, Clone, Default)]
pub struct Series {
    minutes: VecDeque<Minute>,
}

impl Series {
    /// The minute of `unix` to add to. A clock that went back adds to the
    /// newest minute rather than reordering.
    fn at(&mut self, unix: i64) -> &mut Minute {
        let at = minute_of(unix);
        if self.minutes.back().is_none_or(|m| m.at < at) {
            self.minutes.push_back(Minute::new(at));
            while self.minutes.front().is_some_and(|m| m.at <= at - KEEP_MINUTES * 60) {
                self.minutes.pop_front();
            }
        }
        match self.minutes.iter().rposition(|m| m.at == at) {
            Some(i) => &mut self.minutes[i],
            None => self.minutes.back_mut().expect("one was pushed"),
        }
    }

    pub fn request(&mut self, unix: i64, status: u16, service_ms: u64) {
        let m = self.at(unix);
        m.requests += 1;
        match status {
            400..=499 => m.client_errors += 1,
            500..=599 => m.server_errors += 1,
            _ => {}
        }
        m.service.add(service_ms);
    }

    /// A dyno's sample: its memory in use and limit, and its CPU if known.
    pub fn sample(&mut self, unix: i64, process_type: &str, memory: u64, limit: u64, cpu: Option<f64>) {
        let t = self.at(unix).dynos.entry(process_type.to_owned()).or_default();
        t.memory_max = t.memory_max.max(memory);
        t.memory_limit = t.memory_limit.max(limit);
        if let Some(cpu) = cpu {
            t.cpu_sum += cpu;
            t.samples += 1;
        }
    }

    /// The minutes from `since` (Unix seconds) on.
    pub fn since(&self, since: i64) -> Vec<Minute> {
        let from = minute_of(since);
        self.minutes.iter().filter(|m| m.at >= from).cloned().collect()
    }

    /// Minutes read back from the store, merged with what is here (a minute
    /// both have is the stored one plus what came since).
    pub fn restore(&mut self, stored: Vec<Minute>) {
        let mut all: BTreeMap<i64, Minute> = stored.into_iter().map(|m| (m.at, m)).collect();
        for m in self.minutes.drain(..) {
            match all.get_mut(&m.at) {
                Some(s) => {
                    s.requests += m.requests;
                    s.client_errors += m.client_errors;
                    s.server_errors += m.server_errors;
                    s.service.merge(&m.service);
                    for (t, u) in m.dynos {
                        let e = s.dynos.entry(t).or_default();
                        e.memory_max = e.memory_max.max(u.memory_max);
                        e.memory_limit = e.memory_limit.max(u.memory_limit);
                        e.cpu_sum += u.cpu_sum;
                        e.samples += u.samples;
                    }
                }
                None => {
                    all.insert(m.at, m);
                }
            }
        }
        let newest = all.keys().next_back().copied().unwrap_or_default();
        self.minutes = all.into_values().filter(|m| m.at > newest - KEEP_MINUTES * 60).collect();
    }

    pub fn len(&self) -> usize {
        self.minutes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.minutes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_buckets() {
        let mut h = Histogram::default();
        for _ in 0..90 {
            h.add(3);
        }
        for _ in 0..10 {
            h.add(400);
        }
        let p50 = h.quantile(0.5).unwrap();
        assert!((2.0..=5.0).contains(&p50), "{p50}");
        let p95 = h.quantile(0.95).unwrap();
        assert!((300.0..=500.0).contains(&p95), "{p95}");
        assert_eq!(Histogram::default().quantile(0.5), None);
        let mut slow = Histogram::default();
        slow.add(60_000);
        assert_eq!(slow.quantile(0.99), Some(30_000.0));
    }

    #[test]
    fn a_day_of_minutes_is_kept_and_no_more() {
        let mut s = Series::default();
        let start = 1_800_000_000;
        for minute in 0..(KEEP_MINUTES + 100) {
            s.request(start + minute * 60, 200, 5);
        }
        assert_eq!(s.len() as i64, KEEP_MINUTES);
        s.request(start, 500, 5);
        let newest = s.since(start + (KEEP_MINUTES + 99) * 60);
        assert_eq!((newest.len(), newest[0].requests, newest[0].server_errors), (1, 2, 1), "a clock gone back adds to the newest minute");
    }

    #[test]
    fn statuses_and_samples_count_where_they_belong() {
        let mut s = Series::default();
        let t = 1_800_000_000; // a minute boundary (a multiple of 60)
        for status in [200, 204, 302, 404, 404, 429, 500, 503] {
            s.request(t + 1, status, 10);
        }
        s.sample(t + 2, "web", 100 << 20, 512 << 20, Some(20.0));
        s.sample(t + 3, "web", 150 << 20, 512 << 20, Some(40.0));
        let m = &s.since(t)[0];
        assert_eq!((m.requests, m.client_errors, m.server_errors), (8, 3, 2));
        assert_eq!(m.dynos["web"].memory_max, 150 << 20);
        assert_eq!(m.dynos["web"].cpu(), Some(30.0));
    }

    #[test]
    fn stored_minutes_merge_with_what_came_since() {
        let t = 1_800_000_000; // a minute boundary (a multiple of 60)
        let mut stored = Series::default();
        stored.request(t - 60, 200, 1);
        stored.request(t, 200, 1);
        let mut live = Series::default();
        live.request(t + 5, 500, 1);
        live.restore(stored.since(0));
        let all = live.since(0);
        assert_eq!(all.iter().map(|m| (m.at, m.requests)).collect::<Vec<_>>(), [(t - 60, 1), (t, 2)]);
    }
}
