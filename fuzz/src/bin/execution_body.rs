//! AFL target: see [`updraft_fuzz::execution_body`].

fn main() {
    afl::fuzz!(|data: &[u8]| updraft_fuzz::execution_body(data));
}
