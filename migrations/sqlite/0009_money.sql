-- no-transaction
-- Money after the stop (docs/money.md): a refused payment becomes arrears, a delivery that
-- gave up goes to review, refunds are records of their own, and the ledger books four kinds
-- of account. SQLite cannot change a table's checks, so `settlement` and `ledger_entry` are
-- rebuilt as SQLite's ALTER TABLE documentation prescribes: foreign keys off (outside the
-- transaction, where the pragma takes effect), the tables copied, dropped and renamed in one
-- transaction, every foreign key checked before the commit, and foreign keys on again.

pragma foreign_keys = off;
begin;

-- Refunds: an operator gives back part or all of a settled fee.
create table refund (
    refund_id blob primary key check (length(refund_id) = 16),
    session_id blob not null references session (session_id),
    settlement_id blob not null references settlement (settlement_id),
    operator_id blob not null references operator (operator_id),
    -- What the gateway and the driver quote: `QRR-` and 12 characters.
    reference text not null unique,
    currency text not null,
    amount_minor integer not null check (amount_minor > 0),
    reason text not null check (length(reason) between 1 and 500),
    -- pending (on its way to the gateway), refunded, failed (the gateway refused it: nothing
    -- was given back), review (delivery gave up: a person decides).
    status text not null check (status in ('pending', 'refunded', 'failed', 'review')),
    attempts integer not null default 0 check (attempts >= 0),
    last_error text,
    created_at text not null,
    updated_at text not null,
    refunded_at text,
    check ((status = 'refunded') = (refunded_at is not null))
) strict;

create index refund_session_idx on refund (session_id, created_at);
create index refund_status_idx on refund (status) where status in ('pending', 'review');

create trigger refund_no_delete before delete on refund
begin
    select raise(abort, 'refunds are never deleted');
end;

create table settlement_new (
    settlement_id blob primary key check (length(settlement_id) = 16),
    session_id blob not null unique references session (session_id),
    -- What the driver, the operator and the city's payment gateway quote.
    reference text not null unique,
    driver text not null,
    operator_id blob not null references operator (operator_id),
    currency text not null,
    amount_minor integer not null check (amount_minor >= 0),
    -- pending (on its way to the gateway), settled, arrears (the gateway refused it: the
    -- driver owes it), review (delivery gave up: nobody knows whether it was charged).
    status text not null check (status in ('pending', 'settled', 'arrears', 'review')),
    attempts integer not null default 0,
    last_error text,
    created_at text not null,
    updated_at text not null,
    settled_at text,
    -- The refunds that are not failed. The check is the bound: however many refunds race,
    -- they never add up to more than was charged.
    refunded_minor integer not null default 0 check (refunded_minor between 0 and amount_minor),
    -- 1, then one more each time arrears are sent to the gateway again: the gateway's
    -- idempotency key of a round is the reference (round 1) or `reference-N`.
    payment_round integer not null default 1 check (payment_round >= 1),
    -- Since when the driver owes it.
    arrears_since text,
    check ((status = 'settled') = (settled_at is not null)),
    check ((status = 'arrears') = (arrears_since is not null)),
    -- Only collected money is refunded.
    check (refunded_minor = 0 or status = 'settled')
) strict;

-- Before 0009 a refusal and a delivery that gave up were both `failed`, reversed in the
-- ledger; now one is arrears and the other review (the postings below put them back). A
-- zero fee was sent to the gateway too; now nothing to charge is settled at once, so a
-- zero fee pending or refused is settled (it never blocks a driver as 0.00 of arrears).
insert into settlement_new (settlement_id, session_id, reference, driver, operator_id, currency,
    amount_minor, status, attempts, last_error, created_at, updated_at, settled_at,
    refunded_minor, payment_round, arrears_since)
select settlement_id, session_id, reference, driver, operator_id, currency, amount_minor,
    case
        when amount_minor = 0 then 'settled'
        when status <> 'failed' then status
        when coalesce(last_error, '') like 'gave up after%' then 'review'
        else 'arrears'
    end,
    attempts, last_error, created_at, updated_at,
    case when amount_minor = 0 then coalesce(settled_at, updated_at) else settled_at end,
    0, 1,
    case
        when amount_minor > 0 and status = 'failed'
            and coalesce(last_error, '') not like 'gave up after%'
        then updated_at
    end
from settlement;

delete from settlement_outbox
where settlement_id in (select settlement_id from settlement_new where amount_minor = 0);

drop table settlement;
alter table settlement_new rename to settlement;

create trigger settlement_no_delete before delete on settlement
begin
    select raise(abort, 'settlements are never deleted');
end;

-- Exports read each session's settlement status, reference and refunds through this index.
create index settlement_session_export_idx
    on settlement (session_id, status, reference, refunded_minor);
create index settlement_open_idx on settlement (status) where status in ('arrears', 'review');
create index settlement_arrears_driver_idx on settlement (driver) where status = 'arrears';

create table ledger_entry_new (
    ledger_entry_id blob primary key check (length(ledger_entry_id) = 16),
    settlement_id blob not null references settlement (settlement_id),
    -- Set on a refund's postings.
    refund_id blob references refund (refund_id),
    -- What was booked (docs/money.md lists the postings of each).
    event text not null check (event in ('stop', 'refused', 'repay', 'resolved_arrears',
        'refund', 'refund_refused', 'refund_resolved_failed', 'legacy', 'migration')),
    -- `driver_receivable:<subject>`, `gateway_clearing`, `operator_revenue:<operator id>`,
    -- `refunds:<operator id>`; before 0009 `driver:<subject>` and `operator:<operator id>`
    -- (their balances are moved to the new accounts below).
    account text not null check (account glob 'driver_receivable:?*'
        or account = 'gateway_clearing' or account glob 'operator_revenue:?*'
        or account glob 'refunds:?*' or account glob 'driver:?*' or account glob 'operator:?*'),
    currency text not null,
    debit_minor integer not null default 0,
    credit_minor integer not null default 0,
    created_at text not null,
    check ((debit_minor > 0 and credit_minor = 0) or (credit_minor > 0 and debit_minor = 0)),
    check ((refund_id is not null) = (event in ('refund', 'refund_refused', 'refund_resolved_failed')))
) strict;

insert into ledger_entry_new (ledger_entry_id, settlement_id, refund_id, event, account,
    currency, debit_minor, credit_minor, created_at)
select ledger_entry_id, settlement_id, null, 'legacy', account, currency, debit_minor, credit_minor, created_at
from ledger_entry;

drop table ledger_entry;
alter table ledger_entry_new rename to ledger_entry;

create index ledger_entry_settlement_idx on ledger_entry (settlement_id);

create trigger ledger_entry_no_update before update on ledger_entry
begin
    select raise(abort, 'the ledger is append-only: post a reversing entry instead');
end;

create trigger ledger_entry_no_delete before delete on ledger_entry
begin
    select raise(abort, 'the ledger is append-only: post a reversing entry instead');
end;

-- The old accounts' balances move to the new ones, so that every balance matches the
-- settlements' states: a settled or pending fee was `driver:` debit and `operator:` credit,
-- now gateway clearing and operator revenue; a fee that was reversed is owed again (arrears:
-- driver receivable) or awaits review (gateway clearing), against operator revenue.
insert into ledger_entry (ledger_entry_id, settlement_id, refund_id, event, account, currency,
    debit_minor, credit_minor, created_at)
select randomblob(16), settlement_id, null, 'migration', account, currency,
    case when net > 0 then net else 0 end, case when net < 0 then -net else 0 end, at
from (
    -- (`net` is what to debit; negative, what to credit.) Every old account of every
    -- settlement back to zero...
    select l.settlement_id, l.account, l.currency,
        sum(l.credit_minor) - sum(l.debit_minor) as net, s.updated_at as at
    from ledger_entry l join settlement s on s.settlement_id = l.settlement_id
    where l.account glob 'driver:*' or l.account glob 'operator:*'
    group by l.settlement_id, l.account, l.currency, s.updated_at
    union all
    -- ...the fee on gateway clearing (collected, on its way or in review)...
    select settlement_id, 'gateway_clearing', currency, amount_minor, updated_at
    from settlement where amount_minor > 0 and status in ('settled', 'pending', 'review')
    union all
    -- ...or owed by the driver...
    select settlement_id, 'driver_receivable:' || driver, currency, amount_minor, updated_at
    from settlement where amount_minor > 0 and status = 'arrears'
    union all
    -- ...against the operator's revenue (the old operator account names the operator).
    select s.settlement_id, 'operator_revenue:' || (
            select substr(l.account, 10) from ledger_entry l
            where l.settlement_id = s.settlement_id and l.account glob 'operator:*' limit 1),
        s.currency, -s.amount_minor, s.updated_at
    from settlement s where s.amount_minor > 0
)
where net <> 0;

-- Refunds still to be delivered to the city's payment gateway.
create table refund_outbox (
    refund_id blob primary key references refund (refund_id),
    next_attempt_at text not null,
    created_at text not null
) strict;

create index refund_outbox_due_idx on refund_outbox (next_attempt_at);

-- Nothing may point nowhere: a row of `pragma_foreign_key_check` fails this insert, and
-- the transaction is not committed.
create temp table migration_0009_foreign_keys (broken text check (broken is null));
insert into migration_0009_foreign_keys
    select 'broken foreign key in ' || "table" from pragma_foreign_key_check;
drop table migration_0009_foreign_keys;

commit;
pragma foreign_keys = on;
