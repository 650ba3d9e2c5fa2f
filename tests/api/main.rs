//! The HTTP API suite: every test runs once on SQLite and once on PostgreSQL.

mod helpers;

mod audit;
mod auth;
mod cli;
mod demo;
mod enforcement;
mod errors;
mod faults;
mod gateway;
mod housekeeping;
mod isolation;
mod limits;
mod lots;
mod migrations;
mod operations;
mod pages;
mod processes;
mod qr;
mod sessions;
mod settlement;
mod spaces;
mod tariffs;
mod vehicles;
