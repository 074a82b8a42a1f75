//! Integration tests of updraft-model.

mod fuzz_corpus;
