//! HTML-level tests of the web UI: the router over a real SQLite store, requests with the
//! cookies a browser would send, and the pages' markup checked.

mod admin;
mod assets;
mod backfills;
mod cluster;
mod dag_views;
mod dag_world;
mod dags;
mod events;
mod fixture;
mod home;
mod login;
mod world;
