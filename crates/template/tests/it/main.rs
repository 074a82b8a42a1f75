//! Integration tests of updraft-template: rendering, errors and the task identity environment.

mod captures;
mod errors;
mod fixture;
mod fuzz_corpus;
mod identity;
mod limits;
mod render;
