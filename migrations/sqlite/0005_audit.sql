-- The audit log: every state change, hash-chained (SHA-256 over the previous hash and the
-- event's canonical encoding), append-only.

create table audit_event (
    seq integer primary key check (seq >= 1),
    at text not null,
    -- e.g. `session.stopped`, `tariff.published`.
    kind text not null,
    -- The id of what changed (a lot, a space, a session...).
    entity_id text not null,
    -- The event's data as canonical JSON (sorted keys).
    payload text not null check (json_valid(payload)),
    prev_hash blob not null check (length(prev_hash) = 32),
    hash blob not null unique check (length(hash) = 32)
) strict;

create index audit_event_kind_at_idx on audit_event (kind, at);

-- The chain's head, one row: appending writes it, so appends are serialised, and `at`
-- never goes backwards even if process clocks disagree.
create table audit_head (
    id integer primary key check (id = 1),
    seq integer not null,
    hash blob not null,
    at text
) strict;

insert into audit_head (id, seq, hash, at) values (1, 0, zeroblob(32), null);

create trigger audit_event_no_update before update on audit_event
begin
    select raise(abort, 'the audit log is append-only');
end;

create trigger audit_event_no_delete before delete on audit_event
begin
    select raise(abort, 'the audit log is append-only');
end;

create trigger settlement_no_delete before delete on settlement
begin
    select raise(abort, 'settlements are never deleted');
end;

-- A stopped session's place in the chain: its `session.stopped` event. Exports are ordered
-- by it, so a later export of the same range start extends an earlier one.
alter table session add column audit_seq integer;
alter table session add column audit_hash blob;
create index session_audit_seq_idx on session (audit_seq);
