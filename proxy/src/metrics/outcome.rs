//! What one route's requests ended with on one shard, split by (method,
//! status code): counts, bytes, latencies, and request/response sizes in
//! ingress-nginx's length buckets.
//!
//! A route sees few distinct (method, status) pairs, so they are a short
//! list searched linearly; a pair's first request allocates its slot, later
//! ones only add. Everything `/metrics` shows per route, rauta's own
//! families and the `nginx_ingress_controller_*` ones alike, is derived
//! from these at scrape time.

use super::latency::Latency;

/// Upper bounds of ingress-nginx's request and response size buckets
/// (`--length-buckets` default: `prometheus.LinearBuckets(10, 10, 10)`), bytes.
pub const SIZE_BUCKETS: [u64; 10] = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];

/// Upper bounds of ingress-nginx's duration buckets (`--time-buckets`
/// default: `prometheus.DefBuckets`), µs.
pub const TIME_BUCKETS_US: [u64; 11] = [
    5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000,
];

/// Size counts per bucket, not cumulative; the last slot is above 100 bytes.
pub type SizeCounts<C> = [C; SIZE_BUCKETS.len() + 1];

/// Index into [`SizeCounts`] of a size in bytes.
#[inline]
pub fn size_index(bytes: u64) -> usize {
    if bytes > 100 {
        SIZE_BUCKETS.len()
    } else {
        (bytes.max(1) as usize - 1) / 10
    }
}

/// One (method, status) pair of a route since the last snapshot.
#[derive(Debug)]
pub struct Outcome {
    /// Index into [`super::PROTOCOLS`].
    pub protocol: u8,
    /// Index into [`super::METHODS`].
    pub method: u8,
    /// Status code sent to the client (499: the client went away first).
    pub status: u16,
    /// Requests that ended so.
    pub requests: u64,
    /// Request bytes (head and body) received.
    pub bytes_in: u64,
    /// Response bytes (head and body) sent.
    pub bytes_out: u64,
    /// Request sizes by [`size_index`].
    pub in_sizes: SizeCounts<u32>,
    /// Response sizes by [`size_index`].
    pub out_sizes: SizeCounts<u32>,
    /// Complete request head to last response byte, µs.
    pub request_us: Latency<u32>,
    /// Sum of `request_us`.
    pub request_us_sum: u64,
    /// Time with the upstream, µs (requests that reached one).
    pub upstream_us: Latency<u32>,
    /// Sum of `upstream_us`.
    pub upstream_us_sum: u64,
}

impl Outcome {
    fn new(protocol: u8, method: u8, status: u16) -> Outcome {
        Outcome {
            protocol,
            method,
            status,
            requests: 0,
            bytes_in: 0,
            bytes_out: 0,
            in_sizes: [0; SIZE_BUCKETS.len() + 1],
            out_sizes: [0; SIZE_BUCKETS.len() + 1],
            request_us: Latency::default(),
            request_us_sum: 0,
            upstream_us: Latency::default(),
            upstream_us_sum: 0,
        }
    }

    /// The slot of `(protocol, method, status)` in `list`, added when missing.
    #[inline]
    pub fn slot(list: &mut Vec<Outcome>, protocol: u8, method: u8, status: u16) -> &mut Outcome {
        let i = match list
            .iter()
            .position(|o| o.status == status && o.method == method && o.protocol == protocol)
        {
            Some(i) => i,
            None => {
                list.push(Outcome::new(protocol, method, status));
                list.len() - 1
            }
        };
        &mut list[i]
    }

    /// Adds one request.
    #[inline]
    pub fn add(&mut self, bytes_in: u64, bytes_out: u64, total_us: u64, upstream_us: Option<u64>) {
        self.requests += 1;
        self.bytes_in += bytes_in;
        self.bytes_out += bytes_out;
        let i = &mut self.in_sizes[size_index(bytes_in)];
        *i = i.saturating_add(1);
        let o = &mut self.out_sizes[size_index(bytes_out)];
        *o = o.saturating_add(1);
        self.request_us.record(total_us);
        self.request_us_sum = self.request_us_sum.saturating_add(total_us);
        if let Some(us) = upstream_us {
            self.upstream_us.record(us);
            self.upstream_us_sum = self.upstream_us_sum.saturating_add(us);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_fall_into_ingress_nginx_buckets() {
        assert_eq!(size_index(0), 0);
        assert_eq!(size_index(10), 0);
        assert_eq!(size_index(11), 1);
        assert_eq!(size_index(100), 9);
        assert_eq!(size_index(101), 10);
        assert_eq!(size_index(u64::MAX), 10);
    }

    #[test]
    fn pairs_get_one_slot_each() {
        let mut list = Vec::new();
        Outcome::slot(&mut list, 0, 0, 200).add(50, 500, 10, Some(5));
        Outcome::slot(&mut list, 0, 0, 200).add(150, 5, 20, None);
        Outcome::slot(&mut list, 0, 2, 200).add(1, 1, 1, None);
        assert_eq!(list.len(), 2);
        let get = &list[0];
        assert_eq!((get.requests, get.bytes_in, get.bytes_out), (2, 200, 505));
        assert_eq!((get.in_sizes[4], get.in_sizes[10]), (1, 1));
        assert_eq!((get.out_sizes[0], get.out_sizes[10]), (1, 1));
        assert_eq!((get.request_us.len(), get.upstream_us.len()), (2, 1));
        assert_eq!(get.request_us_sum, 30);
    }
}
