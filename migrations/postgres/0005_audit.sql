-- The audit log: every state change, hash-chained (SHA-256 over the previous hash and the
-- event's canonical encoding), append-only.

create table audit_event (
    seq bigint primary key,
    at timestamptz not null,
    -- e.g. `session.stopped`, `tariff.published`.
    kind text not null,
    -- The id of what changed (a lot, a space, a session...).
    entity_id text not null,
    -- The event's data as canonical JSON (sorted keys).
    payload text not null,
    prev_hash bytea not null,
    hash bytea not null,
    constraint audit_event_hash_key unique (hash),
    constraint audit_event_seq_positive check (seq >= 1),
    constraint audit_event_hash_length check (octet_length(hash) = 32 and octet_length(prev_hash) = 32)
);

create index audit_event_kind_at_idx on audit_event (kind, at);

-- The chain's head, one row: appending locks it, so appends are serialised across every
-- process, and `at` never goes backwards even if process clocks disagree.
create table audit_head (
    id integer primary key,
    seq bigint not null,
    hash bytea not null,
    at timestamptz,
    constraint audit_head_single check (id = 1)
);

insert into audit_head (id, seq, hash, at) values (1, 0, decode(repeat('00', 32), 'hex'), null);

create trigger audit_event_no_change before update or delete on audit_event
    for each row execute function ledger_append_only();

create trigger settlement_no_delete before delete on settlement
    for each row execute function ledger_append_only();

-- A stopped session's place in the chain: its `session.stopped` event. Exports are ordered
-- by it, so a later export of the same range start extends an earlier one.
alter table session add column audit_seq bigint;
alter table session add column audit_hash bytea;
create index session_audit_seq_idx on session (audit_seq);
