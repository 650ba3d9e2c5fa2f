-- Driver sessions, their settlement, the double-entry ledger, the payment outbox and
-- idempotency keys.

create table session (
    session_id blob primary key check (length(session_id) = 16),
    lot_id blob not null references lot (lot_id),
    space_id blob not null references space (space_id),
    -- Kept on the session so operators' and auditors' queries need no join to filter.
    operator_id blob not null references operator (operator_id),
    -- The city identity's subject, and nothing else from the token.
    driver text not null check (length(driver) between 1 and 255),
    -- The tariff version in force at the start prices the whole session.
    tariff_id blob not null references tariff (tariff_id),
    tariff_version integer not null,
    currency text not null,
    status text not null check (status in ('active', 'stopped')),
    started_at text not null,
    -- started_at + the tariff's max_stay_minutes, when it has one.
    leave_by text,
    ended_at text check (ended_at is null or ended_at >= started_at),
    -- The fee in minor units of `currency` (exact), and its breakdown as JSON.
    fee_minor integer check (fee_minor is null or fee_minor >= 0),
    fee_lines text check (fee_lines is null or json_valid(fee_lines)),
    created_at text not null,
    updated_at text not null,
    check ((status = 'active') = (ended_at is null)),
    check (status = 'active' or (fee_minor is not null and fee_lines is not null))
) strict;

-- One active session per space, whatever the number of processes racing to start one.
create unique index session_one_active_per_space on session (space_id) where status = 'active';
create index session_driver_idx on session (driver, started_at desc);
create index session_lot_started_idx on session (lot_id, started_at);
create index session_operator_started_idx on session (operator_id, started_at);

create table settlement (
    settlement_id blob primary key check (length(settlement_id) = 16),
    session_id blob not null unique references session (session_id),
    -- What the driver, the operator and the city's payment gateway quote.
    reference text not null unique,
    driver text not null,
    operator_id blob not null references operator (operator_id),
    currency text not null,
    amount_minor integer not null check (amount_minor >= 0),
    status text not null check (status in ('pending', 'settled', 'failed')),
    attempts integer not null default 0,
    last_error text,
    created_at text not null,
    updated_at text not null,
    settled_at text,
    check ((status = 'settled') = (settled_at is not null))
) strict;

-- Append-only double-entry ledger: every settlement debits the driver's city account and
-- credits the operator's account by the same amount. Corrections are reversing entries.
create table ledger_entry (
    ledger_entry_id blob primary key check (length(ledger_entry_id) = 16),
    settlement_id blob not null references settlement (settlement_id),
    -- `driver:<subject>` or `operator:<operator id>`.
    account text not null check (account glob 'driver:?*' or account glob 'operator:?*'),
    currency text not null,
    debit_minor integer not null default 0,
    credit_minor integer not null default 0,
    created_at text not null,
    check ((debit_minor > 0 and credit_minor = 0) or (credit_minor > 0 and debit_minor = 0))
) strict;

create index ledger_entry_settlement_idx on ledger_entry (settlement_id);

create trigger ledger_entry_no_update before update on ledger_entry
begin
    select raise(abort, 'the ledger is append-only: post a reversing entry instead');
end;

create trigger ledger_entry_no_delete before delete on ledger_entry
begin
    select raise(abort, 'the ledger is append-only: post a reversing entry instead');
end;

-- Settlements still to be delivered to the city's payment gateway.
create table settlement_outbox (
    settlement_id blob primary key references settlement (settlement_id),
    next_attempt_at text not null,
    created_at text not null
) strict;

create index settlement_outbox_due_idx on settlement_outbox (next_attempt_at);

-- IETF Idempotency-Key: a driver's key remembers the first request's fingerprint and its
-- answer for at least 24 hours.
create table idempotency_key (
    driver text not null,
    key text not null check (length(key) between 1 and 255),
    request_hash blob not null,
    status text not null check (status in ('in_flight', 'done')),
    response_status integer,
    response_body text,
    created_at text not null,
    expires_at text not null,
    primary key (driver, key),
    check (status = 'in_flight' or (response_status is not null and response_body is not null))
) strict;

create index idempotency_key_expires_idx on idempotency_key (expires_at);
