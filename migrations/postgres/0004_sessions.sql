-- Driver sessions, their settlement, the double-entry ledger, the payment outbox and
-- idempotency keys.

create table session (
    session_id uuid primary key,
    lot_id uuid not null references lot (lot_id),
    space_id uuid not null references space (space_id),
    -- Kept on the session so operators' and auditors' queries need no join to filter.
    operator_id uuid not null references operator (operator_id),
    -- The city identity's subject, and nothing else from the token.
    driver text not null,
    -- The tariff version in force at the start prices the whole session.
    tariff_id uuid not null references tariff (tariff_id),
    tariff_version integer not null,
    currency text not null,
    status text not null,
    started_at timestamptz not null,
    -- started_at + the tariff's max_stay_minutes, when it has one.
    leave_by timestamptz,
    ended_at timestamptz,
    -- The fee in minor units of `currency` (exact), and its breakdown as JSON.
    fee_minor bigint,
    fee_lines text,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    constraint session_status_known check (status in ('active', 'stopped')),
    constraint session_stopped_has_end check ((status = 'active') = (ended_at is null)),
    constraint session_stopped_has_fee check (
        status = 'active' or (fee_minor is not null and fee_lines is not null)),
    constraint session_ends_after_start check (ended_at is null or ended_at >= started_at),
    constraint session_fee_not_negative check (fee_minor is null or fee_minor >= 0),
    constraint session_driver_length check (char_length(driver) between 1 and 255)
);

-- One active session per space, whatever the number of processes racing to start one.
create unique index session_one_active_per_space on session (space_id) where status = 'active';
create index session_driver_idx on session (driver, started_at desc);
create index session_lot_started_idx on session (lot_id, started_at);
create index session_operator_started_idx on session (operator_id, started_at);

create table settlement (
    settlement_id uuid primary key,
    session_id uuid not null references session (session_id),
    -- What the driver, the operator and the city's payment gateway quote.
    reference text not null,
    driver text not null,
    operator_id uuid not null references operator (operator_id),
    currency text not null,
    amount_minor bigint not null,
    status text not null,
    attempts integer not null default 0,
    last_error text,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    settled_at timestamptz,
    constraint settlement_session_key unique (session_id),
    constraint settlement_reference_key unique (reference),
    constraint settlement_status_known check (status in ('pending', 'settled', 'failed')),
    constraint settlement_amount_not_negative check (amount_minor >= 0),
    constraint settlement_settled_has_time check ((status = 'settled') = (settled_at is not null))
);

-- Append-only double-entry ledger: every settlement debits the driver's city account and
-- credits the operator's account by the same amount. Corrections are reversing entries.
create table ledger_entry (
    ledger_entry_id uuid primary key,
    settlement_id uuid not null references settlement (settlement_id),
    -- `driver:<subject>` or `operator:<operator id>`.
    account text not null,
    currency text not null,
    debit_minor bigint not null default 0,
    credit_minor bigint not null default 0,
    created_at timestamptz not null,
    constraint ledger_entry_one_side check (
        (debit_minor > 0 and credit_minor = 0) or (credit_minor > 0 and debit_minor = 0)),
    constraint ledger_entry_account_form check (account ~ '^(driver|operator):.+$')
);

create index ledger_entry_settlement_idx on ledger_entry (settlement_id);

create function ledger_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'the ledger is append-only: post a reversing entry instead';
end;
$$;

create trigger ledger_entry_no_change before update or delete on ledger_entry
    for each row execute function ledger_append_only();

-- Settlements still to be delivered to the city's payment gateway.
create table settlement_outbox (
    settlement_id uuid primary key references settlement (settlement_id),
    next_attempt_at timestamptz not null,
    created_at timestamptz not null
);

create index settlement_outbox_due_idx on settlement_outbox (next_attempt_at);

-- IETF Idempotency-Key: a driver's key remembers the first request's fingerprint and its
-- answer for at least 24 hours.
create table idempotency_key (
    driver text not null,
    key text not null,
    request_hash bytea not null,
    status text not null,
    response_status integer,
    response_body text,
    created_at timestamptz not null,
    expires_at timestamptz not null,
    primary key (driver, key),
    constraint idempotency_key_length check (char_length(key) between 1 and 255),
    constraint idempotency_status_known check (status in ('in_flight', 'done')),
    constraint idempotency_done_has_response check (
        status = 'in_flight' or (response_status is not null and response_body is not null))
);

create index idempotency_key_expires_idx on idempotency_key (expires_at);
