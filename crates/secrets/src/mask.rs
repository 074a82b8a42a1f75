//! Masking: every known secret value in a text becomes `***` (task logs).

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::REDACTED;

/// Secrets shorter than this are not masked (Airflow's `logging.min_length_masked_secret`):
/// masking every `a` or `42` would garble the log and hide nothing worth hiding.
pub const MIN_MASKED_LENGTH: usize = 5;

/// Replaces known secret values with `***`, all of them in one pass over the text.
#[derive(Debug, Clone)]
pub struct Masker {
    automaton: AhoCorasick,
}

impl Masker {
    /// A masker for `secrets`; `None` when none is long enough to mask, so that a caller with
    /// nothing to hide does no work per line. A secret of several lines is also masked line
    /// by line, since logs are written a line at a time.
    pub fn new<S: AsRef<str>>(
        secrets: impl IntoIterator<Item = S>,
        min_length: usize,
    ) -> Option<Masker> {
        let min_length = min_length.max(1);
        let mut patterns: Vec<String> = Vec::new();
        let mut add = |s: &str| {
            if s.chars().count() >= min_length && !patterns.iter().any(|p| p == s) {
                patterns.push(s.to_string());
            }
        };
        for secret in secrets {
            let secret = secret.as_ref();
            add(secret);
            if secret.contains('\n') {
                for line in secret.lines() {
                    add(line.trim_end_matches('\r'));
                }
            }
        }
        if patterns.is_empty() {
            return None;
        }
        // Leftmost-longest: of two secrets where one contains the other, the longer wins, so
        // no part of it is left showing.
        let automaton = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .ok()?;
        Some(Masker { automaton })
    }

    /// `text` with every secret replaced by `***`; borrowed when there is none in it.
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if !self.automaton.is_match(text) {
            return Cow::Borrowed(text);
        }
        let replacements = vec![REDACTED; self.automaton.patterns_len()];
        Cow::Owned(self.automaton.replace_all(text, &replacements))
    }

    /// [`Masker::mask`] on bytes (process output need not be UTF-8).
    pub fn mask_bytes<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        if !self.automaton.is_match(bytes) {
            return Cow::Borrowed(bytes);
        }
        let replacements = vec![REDACTED.as_bytes(); self.automaton.patterns_len()];
        Cow::Owned(self.automaton.replace_all_bytes(bytes, &replacements))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_occurrence_of_every_secret_is_masked() {
        let masker = Masker::new(["hunter22", "s3cr3t-token"], MIN_MASKED_LENGTH).unwrap();
        assert_eq!(
            masker.mask("login with hunter22 and s3cr3t-token, again hunter22"),
            "login with *** and ***, again ***"
        );
        assert!(matches!(masker.mask("nothing here"), Cow::Borrowed(_)));
        assert_eq!(
            &*masker.mask_bytes(b"\xff hunter22 \xfe"),
            b"\xff *** \xfe".as_slice()
        );
    }

    #[test]
    fn the_longest_secret_wins_where_secrets_overlap() {
        let masker = Masker::new(["abcde", "abcdefgh"], MIN_MASKED_LENGTH).unwrap();
        assert_eq!(masker.mask("xabcdefghx abcdex"), "x***x ***x");
    }

    #[test]
    fn short_secrets_are_left_and_nothing_to_mask_is_none() {
        assert!(Masker::new(["abcd", ""], MIN_MASKED_LENGTH).is_none());
        assert!(Masker::new(Vec::<String>::new(), MIN_MASKED_LENGTH).is_none());
        let masker = Masker::new(["abcd", "abcdef"], MIN_MASKED_LENGTH).unwrap();
        assert_eq!(masker.mask("abcd abcdef"), "abcd ***");
        // Length counts characters, not bytes.
        assert!(Masker::new(["äöüß"], MIN_MASKED_LENGTH).is_none());
    }

    #[test]
    fn each_line_of_a_multi_line_secret_is_masked_too() {
        let key = "-----BEGIN KEY-----\nMIIEvQIBADANBgkq\n-----END KEY-----";
        let masker = Masker::new([key], MIN_MASKED_LENGTH).unwrap();
        assert_eq!(masker.mask("line: MIIEvQIBADANBgkq"), "line: ***");
        assert_eq!(masker.mask(key), "***");
    }
}
