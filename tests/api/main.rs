//! The HTTP API suite: every test runs once on SQLite and once on PostgreSQL.

mod helpers;

mod audit;
mod auth;
mod cli;
mod console;
mod demo;
mod enforcement;
mod errors;
mod isolation;
mod lots;
mod operations;
mod pages;
mod processes;
mod qr;
mod sessions;
mod settlement;
mod spaces;
mod tariffs;
mod vehicles;
