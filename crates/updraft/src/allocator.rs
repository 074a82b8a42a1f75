//! The process's allocator: mimalloc rather than glibc's malloc. glibc keeps an arena per
//! thread that allocated, and each holds on to what it once needed: a standalone that read a
//! run of 50,000 task instances on its blocking threads kept several hundred megabytes it no
//! longer used (`bench/RESULTS.md`, W9). glibc limited to two arenas kept that down too, but
//! cost W5 about 6 % of its throughput, where mimalloc gains 3 %. Its price is an idle
//! standalone of 71 MiB against 44 MiB: mimalloc commits its first arena whole, before `main`
//! could say otherwise (`MIMALLOC_ARENA_EAGER_COMMIT=0` in the environment gives the 44 MiB
//! back).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay`: its place in the option enum of the mimalloc (v3) that
/// `libmimalloc-sys` builds, which does not export it by name.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Gives freed memory back to the system at once instead of a second later: loading a DAG
/// of 50,000 tasks frees and allocates hundreds of megabytes within that second, and the delay
/// let them pile up (peak 256 MiB before its run against 159 MiB). `MIMALLOC_PURGE_DELAY`
/// in the environment still decides when set. Call before any other thread starts: mimalloc
/// sets options without synchronization.
pub fn purge_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: a plain store into mimalloc's option table; no other thread runs yet.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tripwire for a mimalloc update that renumbers its options: the option at
    /// `PURGE_DELAY` must have the purge delay's default of mimalloc v3 (1000 ms) and take 0.
    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reads and a store in mimalloc's option table; the test harness's other
        // threads do not set options.
        unsafe {
            assert_eq!(libmimalloc_sys::mi_option_get(PURGE_DELAY), 1000);
            purge_at_once();
            assert_eq!(libmimalloc_sys::mi_option_get(PURGE_DELAY), 0);
        }
    }
}
