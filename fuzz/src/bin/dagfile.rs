//! AFL target: see [`updraft_fuzz::dagfile`].

fn main() {
    afl::fuzz!(|data: &[u8]| updraft_fuzz::dagfile(data));
}
