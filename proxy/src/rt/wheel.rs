//! The shard's timers: a hashed timing wheel of 1 ms ticks.
//!
//! Why not an ordered map: nearly every timer is a timeout that is removed
//! before it fires (a response arrived), and every request adds and
//! removes a few. A B-tree paid a search and a rebalance for each (about a
//! tenth of a small GET's instructions); here adding is a slab insert and
//! a push, removing a slab remove, and the slot's stale mention is dropped
//! when the wheel next passes it (at most one turn, [`SLOTS`] ms, later).
//! A timer fires at the first tick at or after its deadline, never before.

use slab::Slab;
use std::task::Waker;
use std::time::{Duration, Instant};

/// Slots in the wheel (a power of two): one turn is 1.024 s.
const SLOTS: usize = 1024;
/// One tick: 1 ms.
const NANOS_PER_TICK: u64 = 1_000_000;
const TICKS_PER_SEC: u64 = 1_000_000_000 / NANOS_PER_TICK;
const WORDS: usize = SLOTS / 64;

/// Names one pending timer; a key whose timer fired or was removed is
/// stale, and its slab place may hold another timer with another `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerKey {
    index: u32,
    seq: u64,
}

#[derive(Debug)]
struct Entry {
    tick: u64,
    seq: u64,
    waker: Waker,
}

/// Pending timers by tick.
#[derive(Debug)]
pub struct TimerWheel {
    /// Tick 0.
    base: Instant,
    /// Every tick up to this one has been fired.
    done: u64,
    entries: Slab<Entry>,
    /// The timers due in each slot's ticks (any turn), by key; a key may
    /// be stale.
    slots: Box<[Vec<TimerKey>]>,
    /// Which slots have keys.
    occupied: [u64; WORDS],
    seq: u64,
}

impl TimerWheel {
    /// An empty wheel whose tick 0 is `now`.
    pub fn new(now: Instant) -> TimerWheel {
        TimerWheel {
            base: now,
            done: 0,
            entries: Slab::new(),
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            occupied: [0; WORDS],
            seq: 0,
        }
    }

    /// The tick `at` falls in, rounded up (the ms count in u64 math: a
    /// u128 division per timer showed in the profile).
    fn tick_of(&self, at: Instant) -> u64 {
        let d = at.saturating_duration_since(self.base);
        let sub = u64::from(d.subsec_nanos()).div_ceil(NANOS_PER_TICK);
        d.as_secs()
            .saturating_mul(TICKS_PER_SEC)
            .saturating_add(sub)
    }

    /// The last tick begun at `now`.
    fn tick_at(&self, now: Instant) -> u64 {
        let d = now.saturating_duration_since(self.base);
        let sub = u64::from(d.subsec_nanos()) / NANOS_PER_TICK;
        d.as_secs()
            .saturating_mul(TICKS_PER_SEC)
            .saturating_add(sub)
    }

    /// Adds a timer that wakes `waker` once `at` has passed.
    pub fn add(&mut self, at: Instant, waker: Waker) -> TimerKey {
        // A tick already fired would wait a whole turn: the next one.
        let tick = self.tick_of(at).max(self.done + 1);
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let index = self.entries.insert(Entry { tick, seq, waker });
        let key = TimerKey {
            index: index as u32,
            seq,
        };
        let slot = (tick % SLOTS as u64) as usize;
        self.slots[slot].push(key);
        self.occupied[slot / 64] |= 1 << (slot % 64);
        key
    }

    fn entry_mut(&mut self, key: TimerKey) -> Option<&mut Entry> {
        self.entries
            .get_mut(key.index as usize)
            .filter(|e| e.seq == key.seq)
    }

    /// Replaces a pending timer's waker; false when it already fired.
    pub fn update(&mut self, key: TimerKey, waker: &Waker) -> bool {
        match self.entry_mut(key) {
            Some(e) => {
                e.waker.clone_from(waker);
                true
            }
            None => false,
        }
    }

    /// Removes a timer that is no longer wanted (its slot forgets it when
    /// the wheel passes).
    pub fn remove(&mut self, key: TimerKey) {
        if self.entry_mut(key).is_some() {
            self.entries.remove(key.index as usize);
        }
    }

    /// Moves the wakers of every timer due at `now` into `due`.
    pub fn fire(&mut self, now: Instant, due: &mut Vec<Waker>) {
        let now_tick = self.tick_at(now);
        if now_tick <= self.done {
            return;
        }
        let first = self.done + 1;
        // After a turn or more, every slot is due once.
        let count = (now_tick - self.done).min(SLOTS as u64);
        for tick in first..first + count {
            let slot = (tick % SLOTS as u64) as usize;
            if self.occupied[slot / 64] & (1 << (slot % 64)) != 0 {
                self.fire_slot(slot, now_tick, due);
            }
        }
        self.done = now_tick;
    }

    fn fire_slot(&mut self, slot: usize, now_tick: u64, due: &mut Vec<Waker>) {
        let entries = &mut self.entries;
        self.slots[slot].retain(|key| {
            let Some(e) = entries.get(key.index as usize).filter(|e| e.seq == key.seq) else {
                return false;
            };
            if e.tick > now_tick {
                // Due in a later turn.
                return true;
            }
            due.push(entries.remove(key.index as usize).waker);
            false
        });
        if self.slots[slot].is_empty() {
            self.occupied[slot / 64] &= !(1 << (slot % 64));
        }
    }

    /// When the wheel next needs turning: the start of the first tick
    /// after the fired ones whose slot has a timer, possibly one of a later
    /// turn, which then just waits there (a far timer costs a wake-up a
    /// turn; looking into the slots for due ones cost a scan of every
    /// pending timer per wait under load). `None` without timers.
    pub fn next(&self) -> Option<Instant> {
        if self.entries.is_empty() {
            return None;
        }
        let start = ((self.done + 1) % SLOTS as u64) as usize;
        // The occupied bits from `start`, around the wheel once.
        let found = (0..=WORDS).find_map(|i| {
            let w = (start / 64 + i) % WORDS;
            let mut bits = self.occupied[w];
            if i == 0 {
                bits &= u64::MAX << (start % 64);
            } else if i == WORDS {
                bits &= !(u64::MAX << (start % 64));
            }
            (bits != 0).then(|| w * 64 + bits.trailing_zeros() as usize)
        })?;
        let ahead = (found + SLOTS - start) % SLOTS;
        Some(self.start_of(self.done + 1 + ahead as u64))
    }

    /// When `tick` begins. Within a turn of `done`, so no overflow (and no
    /// u32 wrap after 49 days of ticks).
    fn start_of(&self, tick: u64) -> Instant {
        self.base + Duration::from_nanos(tick.saturating_mul(NANOS_PER_TICK))
    }

    /// Pending timers.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Takes every pending timer's waker, for shutdown.
    pub fn clear(&mut self) -> Vec<Waker> {
        for slot in self.slots.iter_mut() {
            slot.clear();
        }
        self.occupied = [0; WORDS];
        self.entries.drain().map(|e| e.waker).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    /// A waker that counts its wakes under a name.
    struct Named(usize, Arc<std::sync::Mutex<Vec<usize>>>);
    impl Wake for Named {
        fn wake(self: Arc<Self>) {
            self.1.lock().expect("lock").push(self.0);
        }
    }

    fn wakers() -> (impl Fn(usize) -> Waker, Arc<std::sync::Mutex<Vec<usize>>>) {
        let woken = Arc::new(std::sync::Mutex::new(Vec::new()));
        let w = woken.clone();
        (move |n| Waker::from(Arc::new(Named(n, w.clone()))), woken)
    }

    fn fire(wheel: &mut TimerWheel, at: Instant) {
        let mut due = Vec::new();
        wheel.fire(at, &mut due);
        due.into_iter().for_each(Waker::wake);
    }

    #[test]
    fn timers_fire_at_or_after_their_deadline_never_before() {
        let t0 = Instant::now();
        let (waker, woken) = wakers();
        let mut wheel = TimerWheel::new(t0);
        let ms = Duration::from_millis;
        wheel.add(t0 + ms(5) + Duration::from_micros(300), waker(1));
        wheel.add(t0 + ms(2), waker(2));
        wheel.add(t0 + ms(3000), waker(3)); // three turns ahead
        assert_eq!(wheel.next(), Some(t0 + ms(2)));
        fire(&mut wheel, t0 + ms(1));
        assert!(woken.lock().expect("lock").is_empty());
        fire(&mut wheel, t0 + ms(2));
        assert_eq!(*woken.lock().expect("lock"), [2]);
        fire(&mut wheel, t0 + ms(5) + Duration::from_micros(900));
        assert_eq!(*woken.lock().expect("lock"), [2], "5.3 ms is due at tick 6");
        fire(&mut wheel, t0 + ms(6));
        assert_eq!(*woken.lock().expect("lock"), [2, 1]);
        // The far one is passed over on each turn until its own.
        fire(&mut wheel, t0 + ms(1100));
        fire(&mut wheel, t0 + ms(2999));
        assert_eq!(wheel.len(), 1);
        assert!(wheel.next().is_some_and(|n| n <= t0 + ms(3000)));
        fire(&mut wheel, t0 + ms(3000));
        assert_eq!(*woken.lock().expect("lock"), [2, 1, 3]);
        assert_eq!((wheel.len(), wheel.next()), (0, None));
    }

    #[test]
    fn a_removed_timer_never_fires_and_its_key_goes_stale() {
        let t0 = Instant::now();
        let (waker, woken) = wakers();
        let mut wheel = TimerWheel::new(t0);
        let ms = Duration::from_millis;
        let a = wheel.add(t0 + ms(10), waker(1));
        wheel.remove(a);
        // The slab place is reused by another timer: the old key must not
        // reach it.
        let b = wheel.add(t0 + ms(20), waker(2));
        assert!(!wheel.update(a, &waker(9)));
        wheel.remove(a);
        assert_eq!(wheel.len(), 1);
        fire(&mut wheel, t0 + ms(15));
        assert!(woken.lock().expect("lock").is_empty());
        assert!(wheel.update(b, &waker(3)));
        fire(&mut wheel, t0 + ms(20));
        assert_eq!(*woken.lock().expect("lock"), [3], "the updated waker");
        assert!(!wheel.update(b, &waker(4)), "fired: stale");
    }

    #[test]
    fn a_deadline_in_a_fired_tick_waits_for_the_next_tick_only() {
        let t0 = Instant::now();
        let (waker, woken) = wakers();
        let mut wheel = TimerWheel::new(t0);
        fire(&mut wheel, t0 + Duration::from_millis(50));
        wheel.add(t0 + Duration::from_millis(10), waker(1));
        fire(&mut wheel, t0 + Duration::from_millis(51));
        assert_eq!(*woken.lock().expect("lock"), [1]);
    }

    #[test]
    fn after_fifty_days_the_next_wakeup_is_still_right() {
        let t0 = Instant::now();
        let (waker, woken) = wakers();
        let mut wheel = TimerWheel::new(t0);
        let later = t0 + Duration::from_secs(50 * 86_400);
        fire(&mut wheel, later);
        wheel.add(later + Duration::from_millis(5), waker(1));
        assert_eq!(wheel.next(), Some(later + Duration::from_millis(5)));
        fire(&mut wheel, later + Duration::from_millis(5));
        assert_eq!(*woken.lock().expect("lock"), [1]);
    }

    #[test]
    fn many_timers_across_turns_all_fire_once() {
        let t0 = Instant::now();
        let count = Arc::new(AtomicUsize::new(0));
        struct Count(Arc<AtomicUsize>);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        let waker = Waker::from(Arc::new(Count(count.clone())));
        let mut wheel = TimerWheel::new(t0);
        let mut removed = 0;
        for i in 0..5000u64 {
            let key = wheel.add(t0 + Duration::from_micros(i * 997), waker.clone());
            if i % 3 == 0 {
                wheel.remove(key);
                removed += 1;
            }
        }
        let mut now = t0;
        while wheel.len() > 0 {
            now = wheel.next().expect("a pending timer").max(now);
            fire(&mut wheel, now);
        }
        assert_eq!(count.load(Ordering::Relaxed), 5000 - removed);
        assert!(wheel.clear().is_empty());
    }
}
