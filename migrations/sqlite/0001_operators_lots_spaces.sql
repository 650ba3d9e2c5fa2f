-- Operators, their API keys, lots and spaces.
-- STRICT tables so a column only ever holds its declared type. Ids are UUIDv7 stored as
-- 16-byte blobs; instants are RFC 3339 text in UTC, which sorts chronologically.

create table operator (
    operator_id blob primary key check (length(operator_id) = 16),
    -- Names identify operators on the command line (`qrpark operator key NAME`).
    name text not null check (length(name) between 1 and 120),
    created_at text not null,
    constraint operator_name_key unique (name)
) strict;

create table operator_key (
    operator_key_id blob primary key check (length(operator_key_id) = 16),
    operator_id blob not null references operator (operator_id),
    -- SHA-256 of the whole key: keys carry 256 random bits, so an unsalted hash is enough
    -- and lets a request find its key with one indexed lookup.
    key_hash blob not null check (length(key_hash) = 32),
    created_at text not null,
    revoked_at text check (revoked_at is null or revoked_at >= created_at),
    constraint operator_key_hash_key unique (key_hash)
) strict;

create index operator_key_operator_idx on operator_key (operator_id);

create table lot (
    lot_id blob primary key check (length(lot_id) = 16),
    operator_id blob not null references operator (operator_id),
    name text not null check (length(name) between 1 and 120),
    address text check (address is null or length(address) between 1 and 300),
    -- IANA name, validated by the application against the tz database it prices with.
    timezone text not null check (length(timezone) between 1 and 64),
    currency text not null check (length(currency) = 3 and currency = upper(currency)),
    -- ISO 4217 minor unit of `currency`, kept beside it so reports need no lookup table.
    minor_unit integer not null check (minor_unit between 0 and 4),
    created_at text not null,
    updated_at text not null,
    constraint lot_operator_name_key unique (operator_id, name)
) strict;

create index lot_operator_idx on lot (operator_id, created_at);

create table space (
    space_id blob primary key check (length(space_id) = 16),
    lot_id blob not null references lot (lot_id),
    code text not null check (length(code) between 1 and 32),
    status text not null default 'active' check (status in ('active', 'out_of_service')),
    created_at text not null,
    updated_at text not null,
    constraint space_lot_code_key unique (lot_id, code)
) strict;
