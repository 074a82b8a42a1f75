//! AFL target: see [`updraft_fuzz::schedule`].

fn main() {
    afl::fuzz!(|data: &[u8]| updraft_fuzz::schedule(data));
}
