//! The statistics the results are made of: latency percentiles, the set of sequence numbers a
//! client received (loss and duplicates), and min-max ranges over repeats.

use serde::{Deserialize, Serialize};

/// The value at percentile `p` (0 < p <= 100) of ascending `sorted` samples, by nearest rank:
/// the smallest sample with at least p% of the samples at or below it. `None` when empty.
pub fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Percentiles of a latency distribution, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// How many samples there were.
    pub samples: u64,
    /// The median.
    pub p50_ms: f64,
    /// The 99th percentile.
    pub p99_ms: f64,
    /// The largest sample.
    pub max_ms: f64,
}

impl LatencySummary {
    /// Summarises samples in microseconds; `None` when there are none.
    pub fn from_micros(mut samples: Vec<u32>) -> Option<Self> {
        samples.sort_unstable();
        let ms = |v: u32| f64::from(v) / 1000.0;
        Some(Self {
            samples: samples.len() as u64,
            p50_ms: ms(percentile(&samples, 50.0)?),
            p99_ms: ms(percentile(&samples, 99.0)?),
            max_ms: ms(*samples.last()?),
        })
    }
}

/// The sequence numbers one client received, as a bitset, and how many frames carried one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeqSet {
    bits: Vec<u64>,
    len: u32,
    received: u64,
    unique: u64,
    out_of_range: u64,
}

impl SeqSet {
    /// A set for sequence numbers `0..len`.
    pub fn new(len: u32) -> Self {
        Self { bits: vec![0; (len as usize).div_ceil(64)], len, received: 0, unique: 0, out_of_range: 0 }
    }

    /// Records one receipt of `seq`; true the first time this client sees it.
    pub fn record(&mut self, seq: u32) -> bool {
        self.received += 1;
        if seq >= self.len {
            self.out_of_range += 1;
            return false;
        }
        let (word, bit) = ((seq / 64) as usize, 1u64 << (seq % 64));
        let first = self.bits[word] & bit == 0;
        self.bits[word] |= bit;
        if first {
            self.unique += 1;
        }
        first
    }

    /// Whether `seq` was received.
    pub fn contains(&self, seq: u32) -> bool {
        seq < self.len && self.bits[(seq / 64) as usize] & (1u64 << (seq % 64)) != 0
    }

    /// The tally of this set against one copy of every sequence number expected.
    pub fn tally(&self) -> DeliveryTally {
        DeliveryTally {
            expected: u64::from(self.len),
            received: self.received,
            unique: self.unique,
            out_of_range: self.out_of_range,
        }
    }
}

/// Deliveries expected and made, added up over clients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryTally {
    /// Frames every client should have received once: clients x notices.
    pub expected: u64,
    /// Frames that carried a sequence number, duplicates included.
    pub received: u64,
    /// Distinct (client, sequence number) pairs received.
    pub unique: u64,
    /// Frames whose sequence number was never sent.
    pub out_of_range: u64,
}

impl DeliveryTally {
    /// Adds another client's tally.
    pub fn add(&mut self, other: DeliveryTally) {
        self.expected += other.expected;
        self.received += other.received;
        self.unique += other.unique;
        self.out_of_range += other.out_of_range;
    }

    /// Deliveries that never came: expected - unique.
    pub fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.unique)
    }

    /// Extra copies: received - unique (frames with an unknown number count here too).
    pub fn duplicates(&self) -> u64 {
        self.received.saturating_sub(self.unique)
    }
}

/// The smallest and largest of a set of values (one per repeat).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

impl Range {
    /// The range of `values`; `None` when there are none (NaNs are skipped).
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Self> {
        values.into_iter().filter(|v| !v.is_nan()).fold(None, |range, v| match range {
            None => Some(Self { min: v, max: v }),
            Some(Self { min, max }) => Some(Self { min: min.min(v), max: max.max(v) }),
        })
    }

    /// `min-max` with three significant digits (one value when both print the same), then
    /// the unit, e.g. `10.1-12.5 µs`.
    pub fn display(&self, unit: &str) -> String {
        let (min, max) = (significant(self.min), significant(self.max));
        let body = if min == max { min } else { format!("{min}-{max}") };
        if unit.is_empty() { body } else { format!("{body} {unit}") }
    }
}

/// A number with about three significant digits, without exponent, e.g. `0.0123`, `1.23`,
/// `12.3`, `123`, `12345`.
pub fn significant(value: f64) -> String {
    if value.is_infinite() {
        return if value > 0.0 { "∞".to_owned() } else { "-∞".to_owned() };
    }
    let magnitude = value.abs();
    // Below the resolution of anything measured here (a CPU tick is 10 ms): zero.
    if magnitude < 0.0005 {
        return "0".to_owned();
    }
    let decimals = if magnitude >= 100.0 {
        0
    } else if magnitude >= 10.0 {
        1
    } else if magnitude >= 1.0 {
        2
    } else {
        // 0.5 -> 3 decimals, 0.05 -> 4, ...
        (2 - magnitude.log10().floor() as i32).clamp(3, 9) as usize
    };
    format!("{value:.decimals$}")
}

/// Finds the decimal number right after `marker` in `text` (`bench-seq:42` -> 42) with a plain
/// substring search: no JSON parse, to keep the clients' own CPU low.
pub fn number_after(text: &str, marker: &str) -> Option<u32> {
    let start = text.find(marker)? + marker.len();
    let digits = text[start..].bytes().take_while(u8::is_ascii_digit).count();
    text[start..start + digits].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&samples, 50.0), Some(50));
        assert_eq!(percentile(&samples, 99.0), Some(99));
        assert_eq!(percentile(&samples, 100.0), Some(100));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[1, 2, 3], 50.0), Some(2));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn a_latency_summary_sorts_and_converts_to_milliseconds() {
        let summary = LatencySummary::from_micros(vec![3000, 1000, 2000, 250_000]).unwrap();
        assert_eq!(summary.samples, 4);
        assert_eq!(summary.p50_ms, 2.0);
        assert_eq!(summary.p99_ms, 250.0);
        assert_eq!(summary.max_ms, 250.0);
        assert_eq!(LatencySummary::from_micros(Vec::new()), None);
    }

    #[test]
    fn loss_is_what_never_came_and_duplicates_are_extra_copies() {
        let mut seen = SeqSet::new(130);
        for seq in 0..128 {
            assert!(seen.record(seq));
        }
        assert!(!seen.record(5), "a second copy is not new");
        assert!(!seen.record(127));
        assert!(seen.contains(127) && !seen.contains(128) && !seen.contains(500));
        let tally = seen.tally();
        assert_eq!(tally, DeliveryTally { expected: 130, received: 130, unique: 128, out_of_range: 0 });
        assert_eq!(tally.lost(), 2);
        assert_eq!(tally.duplicates(), 2);
    }

    #[test]
    fn a_number_never_sent_counts_as_a_duplicate_not_a_delivery() {
        let mut seen = SeqSet::new(2);
        seen.record(0);
        seen.record(1);
        assert!(!seen.record(9));
        let tally = seen.tally();
        assert_eq!((tally.lost(), tally.duplicates(), tally.out_of_range), (0, 1, 1));
    }

    #[test]
    fn tallies_add_up_over_clients() {
        let mut total = DeliveryTally::default();
        let mut complete = SeqSet::new(3);
        (0..3).for_each(|s| {
            complete.record(s);
        });
        let mut partial = SeqSet::new(3);
        partial.record(1);
        total.add(complete.tally());
        total.add(partial.tally());
        assert_eq!((total.expected, total.unique, total.lost(), total.duplicates()), (6, 4, 2, 0));
    }

    #[test]
    fn ranges_span_the_values_and_print_compactly() {
        let range = Range::of([12.53, 10.1, 11.0]).unwrap();
        assert_eq!(range, Range { min: 10.1, max: 12.53 });
        assert_eq!(range.display("µs"), "10.1-12.5 µs");
        assert_eq!(Range::of([2.0, 2.001]).unwrap().display("s"), "2.00 s");
        assert_eq!(Range::of([0.0123]).unwrap().display(""), "0.0123");
        assert_eq!(Range::of([0.000000651, 0.0]).unwrap().display("s"), "0 s");
        assert_eq!(Range::of([f64::NAN, 4.0]).unwrap(), Range { min: 4.0, max: 4.0 });
        assert_eq!(Range::of(Vec::<f64>::new()), None);
        assert_eq!(Range::of([12345.6, 20000.0]).unwrap().display("/s"), "12346-20000 /s");
        assert_eq!(Range::of([1.5, f64::INFINITY]).unwrap().display("s"), "1.50-∞ s");
    }

    #[test]
    fn the_sequence_number_is_found_inside_any_frame() {
        let herald = r#"{"type":"notification","data":{"content":"bench-seq:417","message_id":"1-ab"}}"#;
        assert_eq!(number_after(herald, "bench-seq:"), Some(417));
        assert_eq!(number_after("bench-seq:0", "bench-seq:"), Some(0));
        assert_eq!(number_after("bench-warm:3", "bench-seq:"), None);
        assert_eq!(number_after("bench-seq:", "bench-seq:"), None);
    }
}
