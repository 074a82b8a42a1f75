//! Links the `updraft` executable position-dependent on Linux (`-no-pie`), unless
//! `UPDRAFT_PIE` is set when it is built.
//!
//! A position-independent executable carries a relocation for every pointer in its read-only
//! data (79,000 of them, 1.8 MiB), which the loader reads and applies at each start, writing
//! 1.8 MiB of `.data.rel.ro` into private pages; `standalone`'s forked reaper holds another
//! copy of them. Linked at a fixed address, those pages stay clean and shared with the file:
//! an idle standalone is about 5 MiB smaller (bench/RESULTS.md, W3). What it gives up is the
//! randomized address of the executable's own code (libraries, stacks and the heap are still
//! randomized), the trade Go makes by default for its binaries.
fn main() {
    println!("cargo:rerun-if-env-changed=UPDRAFT_PIE");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if linux && std::env::var_os("UPDRAFT_PIE").is_none() {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
