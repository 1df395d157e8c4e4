#![allow(clippy::unwrap_used)]
//! End-to-end tests: the real server on 127.0.0.1:0 with real TLS, driven through the
//! real client. Cases follow Tahoe's `test_istorageserver.py` and `test_storage_http.py`
//! (the behaviour, in our own code).

mod activity;
mod auth_and_errors;
mod browser;
mod browser_kit;
mod check;
mod cli;
mod container;
mod crash;
mod dashboard;
mod dirs;
mod disk;
mod faults;
mod feed_client;
mod feed_restart;
mod feed_wires;
mod feeds;
mod gateway;
mod gateway_forms;
mod gateway_watch;
mod grid;
mod hardening;
mod hostile_clients;
mod hostile_server;
mod identity;
mod immutable;
mod journal_faults;
mod leases;
mod magic_folder;
mod mirror;
mod mutable;
mod node_dir;
mod operator;
mod otel;
mod publish;
mod races;
mod reload;
mod status;
mod transport;
