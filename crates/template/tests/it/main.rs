//! Integration tests of updraft-template: rendering, errors and the task identity environment.

mod errors;
mod fixture;
mod identity;
mod render;
