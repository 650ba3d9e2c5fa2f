//! The HTTP API suite: every test runs once on SQLite and once on PostgreSQL.

mod helpers;

mod audit;
mod auth;
mod cli;
mod console;
mod demo;
mod enforcement;
mod errors;
mod faults;
mod gateway;
mod housekeeping;
mod isolation;
mod keys;
mod limits;
mod lots;
mod migrations;
mod money;
mod openapi;
mod operations;
mod pages;
mod privacy;
mod processes;
mod qr;
mod replica;
mod scan_cache;
mod sessions;
mod spaces;
mod tariffs;
mod vehicles;
