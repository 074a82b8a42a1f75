//! The process's allocator: mimalloc rather than glibc's malloc. glibc keeps an arena per
//! thread that allocated, and each holds on to what it once needed: a standalone that read a
//! run of 50,000 task instances on its blocking threads kept several hundred megabytes it no
//! longer used (`bench/RESULTS.md`, W9). glibc limited to two arenas kept that down too, but
//! cost W5 about 6 % of its throughput, where mimalloc gains 3 to 5 %.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_arena_eager_commit` and `mi_option_purge_delay`: their places in the option enum
/// of the mimalloc (v3) that `libmimalloc-sys` builds, which does not export them by name.
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Runs before mimalloc starts (a constructor ahead of the default priority, which mimalloc's
/// own has): the first arena is committed as mimalloc starts, before `main` could say
/// otherwise.
#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array.00099"]
static CONFIGURE_FIRST: extern "C" fn() = configure_first;

#[cfg(target_os = "linux")]
extern "C" fn configure_first() {
    configure();
}

/// Sets updraft's mimalloc options, each unless the environment sets it
/// (`MIMALLOC_ARENA_EAGER_COMMIT`, `MIMALLOC_PURGE_DELAY`):
/// - arenas are committed as they are used, not whole: committing the first one up front made
///   an idle standalone 73 MiB (45 MiB this way, 41 MiB on glibc);
/// - freed memory goes back to the system at once instead of a second later: loading a DAG of
///   50,000 tasks frees and allocates hundreds of megabytes within that second, and the delay
///   let them pile up (peak 256 MiB before its run against 159 MiB).
///
/// Reads the environment without allocating: it may run before the allocator starts. Only
/// these exact names are honoured here (mimalloc itself also takes them in lower case, and
/// its legacy `MIMALLOC_EAGER_REGION_COMMIT` and `MIMALLOC_RESET_DELAY`).
pub fn configure() {
    for (option, value, variable) in [
        (ARENA_EAGER_COMMIT, 0, c"MIMALLOC_ARENA_EAGER_COMMIT"),
        (PURGE_DELAY, 0, c"MIMALLOC_PURGE_DELAY"),
    ] {
        // SAFETY: `getenv` of a NUL-terminated name; mimalloc's options are plain stores
        // into its table, made before any other thread runs.
        unsafe {
            if libc::getenv(variable.as_ptr()).is_null() {
                libmimalloc_sys::mi_option_set(option, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tripwire for a mimalloc update that renumbers its options: each place must hold the
    /// value updraft set (the constructor ran before the tests), and its neighbours mimalloc
    /// v3's defaults (`purge_decommits` 1, `use_numa_nodes` 0).
    #[test]
    fn the_options_set_are_the_ones_meant() {
        // SAFETY: reads of mimalloc's option table.
        unsafe {
            if libc::getenv(c"MIMALLOC_ARENA_EAGER_COMMIT".as_ptr()).is_null() {
                assert_eq!(libmimalloc_sys::mi_option_get(ARENA_EAGER_COMMIT), 0);
            }
            if libc::getenv(c"MIMALLOC_PURGE_DELAY".as_ptr()).is_null() {
                assert_eq!(libmimalloc_sys::mi_option_get(PURGE_DELAY), 0);
            }
            assert_eq!(libmimalloc_sys::mi_option_get(ARENA_EAGER_COMMIT + 1), 1);
            assert_eq!(libmimalloc_sys::mi_option_get(PURGE_DELAY + 1), 0);
        }
    }
}
