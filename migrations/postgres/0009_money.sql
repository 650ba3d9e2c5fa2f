-- Money after the stop (docs/money.md): a refused payment becomes arrears, a delivery that
-- gave up goes to review, refunds are records of their own, and the ledger books four kinds
-- of account.

-- Refunds: an operator gives back part or all of a settled fee.
create table refund (
    refund_id uuid primary key,
    session_id uuid not null references session (session_id),
    settlement_id uuid not null references settlement (settlement_id),
    operator_id uuid not null references operator (operator_id),
    -- What the gateway and the driver quote: `QRR-` and 12 characters.
    reference text not null,
    currency text not null,
    amount_minor bigint not null,
    reason text not null,
    -- pending (on its way to the gateway), refunded, failed (the gateway refused it: nothing
    -- was given back), review (delivery gave up: a person decides).
    status text not null,
    attempts integer not null default 0,
    last_error text,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    refunded_at timestamptz,
    constraint refund_reference_key unique (reference),
    constraint refund_amount_positive check (amount_minor > 0),
    constraint refund_reason_length check (char_length(reason) between 1 and 500),
    constraint refund_status_known check (status in ('pending', 'refunded', 'failed', 'review')),
    constraint refund_attempts_not_negative check (attempts >= 0),
    constraint refund_refunded_has_time check ((status = 'refunded') = (refunded_at is not null))
);

create index refund_session_idx on refund (session_id, created_at);
create index refund_status_idx on refund (status) where status in ('pending', 'review');

create trigger refund_no_delete before delete on refund
    for each row execute function ledger_append_only();

-- Before 0009 a refusal and a delivery that gave up were both `failed`, reversed in the
-- ledger; now one is arrears and the other review (the postings below put them back). A
-- zero fee was sent to the gateway too; now nothing to charge is settled at once, so a
-- zero fee pending or refused is settled (it never blocks a driver as 0.00 of arrears).
alter table settlement drop constraint settlement_status_known;
alter table settlement add column arrears_since timestamptz;
delete from settlement_outbox
where settlement_id in (select settlement_id from settlement where amount_minor = 0);
update settlement set status = 'settled', settled_at = coalesce(settled_at, updated_at)
where amount_minor = 0 and status in ('pending', 'failed');
update settlement set
    status = case when coalesce(last_error, '') like 'gave up after%' then 'review' else 'arrears' end,
    arrears_since = case when coalesce(last_error, '') like 'gave up after%' then null else updated_at end
where status = 'failed';
alter table settlement
    add constraint settlement_status_known
        check (status in ('pending', 'settled', 'arrears', 'review')),
    add constraint settlement_arrears_has_time check ((status = 'arrears') = (arrears_since is not null)),
    -- The refunds that are not failed. The check is the bound: however many refunds race,
    -- they never add up to more than was charged.
    add column refunded_minor bigint not null default 0,
    add constraint settlement_refunded_within_charge
        check (refunded_minor between 0 and amount_minor),
    -- Only collected money is refunded.
    add constraint settlement_refunds_settled check (refunded_minor = 0 or status = 'settled'),
    -- 1, then one more each time arrears are sent to the gateway again: the gateway's
    -- idempotency key of a round is the reference (round 1) or `reference-N`.
    add column payment_round integer not null default 1,
    add constraint settlement_payment_round_positive check (payment_round >= 1);

-- Exports read a settlement's status, reference and refunds through this index alone.
drop index settlement_export_idx;
create index settlement_export_idx on settlement (session_audit_seq)
    include (status, reference, refunded_minor);
create index settlement_open_idx on settlement (status) where status in ('arrears', 'review');
create index settlement_arrears_driver_idx on settlement (driver) where status = 'arrears';

-- What was booked (docs/money.md lists the postings of each); entries from before 0009 are
-- `legacy`. Accounts: `driver_receivable:<subject>`, `gateway_clearing`,
-- `operator_revenue:<operator id>`, `refunds:<operator id>`; before 0009 `driver:<subject>`
-- and `operator:<operator id>` (their balances are moved to the new accounts below).
alter table ledger_entry
    add column refund_id uuid references refund (refund_id),
    add column event text not null default 'legacy';
alter table ledger_entry alter column event drop default;
alter table ledger_entry
    drop constraint ledger_entry_account_form,
    add constraint ledger_entry_account_form check (
        account ~ '^(driver_receivable|operator_revenue|refunds|driver|operator):.+$'
        or account = 'gateway_clearing'),
    add constraint ledger_entry_event_known check (event in ('stop', 'refused', 'repay',
        'resolved_arrears', 'refund', 'refund_refused', 'refund_resolved_failed', 'legacy',
        'migration')),
    add constraint ledger_entry_refund_event check (
        (refund_id is not null) = (event in ('refund', 'refund_refused', 'refund_resolved_failed')));

-- The old accounts' balances move to the new ones, so that every balance matches the
-- settlements' states: a settled or pending fee was `driver:` debit and `operator:` credit,
-- now gateway clearing and operator revenue; a fee that was reversed is owed again (arrears:
-- driver receivable) or awaits review (gateway clearing), against operator revenue.
-- (`net` is what to debit; negative, what to credit.)
insert into ledger_entry (ledger_entry_id, settlement_id, refund_id, event, account, currency,
    debit_minor, credit_minor, created_at)
select gen_random_uuid(), settlement_id, null, 'migration', account, currency,
    greatest(net, 0), greatest(-net, 0), at
from (
    select l.settlement_id, l.account, l.currency,
        sum(l.credit_minor) - sum(l.debit_minor) as net, s.updated_at as at
    from ledger_entry l join settlement s on s.settlement_id = l.settlement_id
    where l.account ~ '^(driver|operator):'
    group by l.settlement_id, l.account, l.currency, s.updated_at
    union all
    select settlement_id, 'gateway_clearing', currency, amount_minor, updated_at
    from settlement where amount_minor > 0 and status in ('settled', 'pending', 'review')
    union all
    select settlement_id, 'driver_receivable:' || driver, currency, amount_minor, updated_at
    from settlement where amount_minor > 0 and status = 'arrears'
    union all
    select settlement_id, 'operator_revenue:' || operator_id::text, currency, -amount_minor,
        updated_at
    from settlement where amount_minor > 0
) moves
where net <> 0;

-- Refunds still to be delivered to the city's payment gateway.
create table refund_outbox (
    refund_id uuid primary key references refund (refund_id),
    next_attempt_at timestamptz not null,
    created_at timestamptz not null
);

create index refund_outbox_due_idx on refund_outbox (next_attempt_at);
