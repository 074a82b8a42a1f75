//! Repeatable pseudo-random choices for the tests that play many seeds.

pub(crate) struct Dice(pub(crate) u64);

impl Dice {
    /// A number below `sides` (xorshift; the seed must not be 0).
    pub(crate) fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % sides
    }
}
