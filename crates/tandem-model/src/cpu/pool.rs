//! A persistent thread pool for the CPU engine: one job at a time, split into as many
//! parts as there are threads, with the calling thread running part 0.
//!
//! A decode step of a 30-layer model runs about 150 parallel sections (each linear
//! layer, each attention), some of them a few microseconds long. Spawning tasks or
//! waking sleeping threads for each would cost more than the work, so workers spin on
//! an epoch counter between jobs and only park after [`SPIN`] without work (the gap
//! between two decode steps is far shorter). A job is a borrowed closure: `run`
//! returns only after every part has finished, so the borrow outlives its use.
//!
//! `TANDEM_THREADS` sets the thread count (default: the CPU's available parallelism).
//! The split never changes a result: each output element is computed by exactly one
//! part with the same code, whatever the part count.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

/// How long an idle worker spins before it parks.
const SPIN: Duration = Duration::from_millis(5);

/// A job: called once per part with the part's index.
type Job<'a> = dyn Fn(usize) + Sync + 'a;

thread_local! {
    /// Set while this thread runs a part, so a nested `run` runs serially instead of
    /// waiting on itself.
    static IN_JOB: Cell<bool> = const { Cell::new(false) };
}

struct Shared {
    /// A pointer to the caller's `&Job` (a thin pointer to a fat one), valid while
    /// `remaining > 0` for the epoch that published it.
    job: AtomicPtr<()>,
    epoch: AtomicU64,
    remaining: AtomicUsize,
    panicked: AtomicBool,
    shutdown: AtomicBool,
    sleeping: Vec<AtomicBool>,
    threads: OnceLock<Vec<Thread>>,
}

/// The pool (see the module docs).
pub struct Pool {
    shared: Arc<Shared>,
    threads: usize,
    /// One job at a time; a second caller meanwhile runs its job serially.
    busy: Mutex<()>,
    handles: Vec<JoinHandle<()>>,
}

impl Pool {
    /// A pool of `threads` threads in all: the caller of [`run`](Self::run) and
    /// `threads − 1` workers.
    pub fn new(threads: usize) -> Self {
        let threads = threads.max(1);
        let workers = threads - 1;
        let shared = Arc::new(Shared {
            job: AtomicPtr::new(std::ptr::null_mut()),
            epoch: AtomicU64::new(0),
            remaining: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            sleeping: (0..workers).map(|_| AtomicBool::new(false)).collect(),
            threads: OnceLock::new(),
        });
        let handles: Vec<JoinHandle<()>> = (0..workers)
            .map(|w| {
                let shared = Arc::clone(&shared);
                thread::Builder::new()
                    .name(format!("tandem-cpu-{}", w + 1))
                    .spawn(move || worker(&shared, w))
                    .expect("spawning a CPU engine thread")
            })
            .collect();
        let _ = shared
            .threads
            .set(handles.iter().map(|h| h.thread().clone()).collect());
        Self {
            shared,
            threads,
            busy: Mutex::new(()),
            handles,
        }
    }

    /// The process-wide pool every CPU model shares (so a draft and a target do not
    /// each bring their own threads).
    pub fn global() -> &'static Pool {
        static POOL: OnceLock<Pool> = OnceLock::new();
        POOL.get_or_init(|| Pool::new(default_threads()))
    }

    /// Threads in all, the caller included: the number of parts of every job.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `job(part)` for every part `0..threads()`, part 0 on this thread, and
    /// returns when all are done. A panic in any part is re-raised here.
    pub fn run(&self, job: &Job<'_>) {
        let serial = || (0..self.threads).for_each(job);
        if self.threads == 1 || IN_JOB.with(Cell::get) {
            return serial();
        }
        let Ok(_busy) = self.busy.try_lock() else {
            // Another thread's model is running: same results, one thread.
            return serial();
        };
        let shared = &*self.shared;
        // Workers dereference this pointer only before they decrement `remaining`, and
        // this function waits for `remaining == 0` before it returns: `job` (and this
        // local) outlive every use.
        let job_ref: &Job<'_> = job;
        shared
            .job
            .store(&job_ref as *const &Job<'_> as *mut (), Ordering::Relaxed);
        shared.panicked.store(false, Ordering::Relaxed);
        shared.remaining.store(self.threads - 1, Ordering::Relaxed);
        shared.epoch.fetch_add(1, Ordering::SeqCst);
        for (w, sleeping) in shared.sleeping.iter().enumerate() {
            if sleeping.load(Ordering::SeqCst) {
                if let Some(threads) = shared.threads.get() {
                    threads[w].unpark();
                }
            }
        }
        let mine = run_part(job, 0);
        let mut spins = 0u32;
        while shared.remaining.load(Ordering::Acquire) != 0 {
            spin(&mut spins);
        }
        if let Err(payload) = mine {
            std::panic::resume_unwind(payload);
        }
        if shared.panicked.load(Ordering::Relaxed) {
            panic!("a CPU engine thread panicked");
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        for handle in self.handles.drain(..) {
            handle.thread().unpark();
            let _ = handle.join();
        }
    }
}

fn run_part(job: &Job<'_>, part: usize) -> thread::Result<()> {
    IN_JOB.with(|c| c.set(true));
    let result = catch_unwind(AssertUnwindSafe(|| job(part)));
    IN_JOB.with(|c| c.set(false));
    result
}

fn worker(shared: &Shared, index: usize) {
    let mut seen = 0u64;
    loop {
        let mut idle_since = Instant::now();
        let mut spins = 0u32;
        loop {
            let epoch = shared.epoch.load(Ordering::Acquire);
            if epoch != seen {
                seen = epoch;
                break;
            }
            if shared.shutdown.load(Ordering::Relaxed) {
                return;
            }
            spin(&mut spins);
            if spins.is_multiple_of(1024) && idle_since.elapsed() > SPIN {
                let sleeping = &shared.sleeping[index];
                sleeping.store(true, Ordering::SeqCst);
                // Checked after announcing the sleep: a job published before this
                // load is seen here, one published after it finds `sleeping` set
                // and unparks this thread.
                if shared.epoch.load(Ordering::SeqCst) == seen
                    && !shared.shutdown.load(Ordering::SeqCst)
                {
                    thread::park();
                }
                sleeping.store(false, Ordering::SeqCst);
                idle_since = Instant::now();
            }
        }
        let job = shared.job.load(Ordering::Relaxed) as *const &Job<'_>;
        // SAFETY: the pointer was stored before the epoch was bumped (the Acquire load
        // above pairs with the bump), and `run` keeps what it points to alive until
        // `remaining` reaches 0, which happens only after this part.
        let job: &Job<'_> = unsafe { *job };
        if run_part(job, index + 1).is_err() {
            shared.panicked.store(true, Ordering::Relaxed);
        }
        shared.remaining.fetch_sub(1, Ordering::Release);
    }
}

/// One step of a busy wait. Every 256 steps it offers the core to another runnable
/// thread: with more threads than cores (tests in parallel, another program) a spinning
/// thread would otherwise hold the core the thread it waits for needs.
#[inline]
fn spin(spins: &mut u32) {
    *spins = spins.wrapping_add(1);
    if spins.is_multiple_of(256) {
        thread::yield_now();
    } else {
        std::hint::spin_loop();
    }
}

/// `TANDEM_THREADS`, else the CPU's available parallelism.
pub fn default_threads() -> usize {
    std::env::var("TANDEM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| thread::available_parallelism().map_or(1, |n| n.get()))
        .min(256)
}

/// The `part`-th of `parts` contiguous, balanced shares of `0..total`.
pub fn share(total: usize, part: usize, parts: usize) -> std::ops::Range<usize> {
    let start = total * part / parts;
    let end = total * (part + 1) / parts;
    start..end
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn every_part_runs_once_per_job_across_many_jobs() {
        let pool = Pool::new(3);
        let counts: Vec<AtomicU32> = (0..3).map(|_| AtomicU32::new(0)).collect();
        for _ in 0..10_000 {
            pool.run(&|part| {
                counts[part].fetch_add(1, Ordering::Relaxed);
            });
        }
        for c in &counts {
            assert_eq!(c.load(Ordering::Relaxed), 10_000);
        }
    }

    #[test]
    fn parked_workers_wake_up() {
        let pool = Pool::new(2);
        let hits = AtomicU32::new(0);
        pool.run(&|_| {
            hits.fetch_add(1, Ordering::Relaxed);
        });
        thread::sleep(SPIN * 3);
        pool.run(&|_| {
            hits.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(hits.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn a_panicking_part_panics_the_caller_and_the_pool_goes_on() {
        let pool = Pool::new(2);
        let result = catch_unwind(AssertUnwindSafe(|| {
            pool.run(&|part| {
                if part == 1 {
                    panic!("part 1 fails");
                }
            })
        }));
        assert!(result.is_err());
        let hits = AtomicU32::new(0);
        pool.run(&|_| {
            hits.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(hits.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn nested_and_concurrent_jobs_run_serially() {
        let pool = Pool::new(2);
        let hits = AtomicU32::new(0);
        pool.run(&|_| {
            pool.run(&|_| {
                hits.fetch_add(1, Ordering::Relaxed);
            });
        });
        assert_eq!(hits.load(Ordering::Relaxed), 4);
        thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..200 {
                        pool.run(&|_| {
                            hits.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                });
            }
        });
        assert_eq!(hits.load(Ordering::Relaxed), 4 + 4 * 200 * 2);
    }

    #[test]
    fn shares_cover_the_range_in_order() {
        let shares: Vec<_> = (0..3).map(|p| share(10, p, 3)).collect();
        assert_eq!(shares, vec![0..3, 3..6, 6..10]);
        assert_eq!(share(1, 0, 2), 0..0);
        assert_eq!(share(1, 1, 2), 0..1);
    }
}
