-- Audited changes no longer write the audit chain's head. Each writes its event into
-- `audit_pending` in its own transaction, and a sealer (src/store/audit.rs) moves pending
-- events into `audit_event` in batches, in the order they were written (docs/audit.md,
-- "Sealing"). Only sealers touch `audit_head` from here on. The chain already sealed, and
-- its head, stay as they are.

create table audit_pending (
    -- The order events were written in (never reused): the sealer chains them in it.
    id integer primary key autoincrement,
    -- When the change happened, by its process's clock.
    at text not null,
    kind text not null check (length(kind) between 1 and 100),
    entity_id text not null,
    -- Canonical JSON, as `audit_event.payload`.
    payload text not null check (json_valid(payload)),
    -- The table whose row takes the event's place in the chain when it is sealed (that row
    -- points at this one through its `audit_pending` column until then), if any.
    place text check (place in ('session', 'violation'))
) strict;

-- A stopped session either has its place in the chain (`audit_seq`, `audit_hash`) or waits
-- for it (`audit_pending`), never both. Exports hold sealed sessions only.
alter table session add column audit_pending integer references audit_pending (id);
create unique index session_audit_pending_key on session (audit_pending)
    where audit_pending is not null;

drop trigger session_stopped_in_chain_insert;
drop trigger session_stopped_in_chain_update;

create trigger session_stopped_in_chain_insert before insert on session
when (new.status = 'stopped' and new.audit_pending is null
      and (new.audit_seq is null or new.audit_hash is null))
  or (new.audit_pending is not null and (new.audit_seq is not null or new.audit_hash is not null))
begin
    select raise(abort, 'a stopped session has its place in the audit chain or waits for it, not both');
end;

create trigger session_stopped_in_chain_update before update on session
when (new.status = 'stopped' and new.audit_pending is null
      and (new.audit_seq is null or new.audit_hash is null))
  or (new.audit_pending is not null and (new.audit_seq is not null or new.audit_hash is not null))
begin
    select raise(abort, 'a stopped session has its place in the audit chain or waits for it, not both');
end;

-- A violation likewise waits for its place: exactly one of `audit_seq` and `audit_pending`.
-- SQLite cannot drop a column's `not null` in place, so the table is rebuilt as its
-- documentation prescribes (nothing refers to violations, so foreign keys stay on).
create table violation_sealed (
    violation_id blob primary key check (length(violation_id) = 16),
    space_id blob not null references space (space_id),
    lot_id blob not null references lot (lot_id),
    operator_id blob not null references operator (operator_id),
    plate text not null check (length(plate) between 2 and 11),
    note text check (note is null or length(note) between 1 and 500),
    -- The warden's city identity subject.
    warden text not null check (length(warden) between 1 and 255),
    observed_at text not null,
    -- What the space showed: `unpaid`, or `paid` for another vehicle.
    status_at_observation text not null check (status_at_observation in ('paid', 'unpaid')),
    -- The session active on the space at the time, if any (another plate's).
    session_id blob references session (session_id),
    audit_seq integer unique,
    created_at text not null,
    audit_pending integer unique references audit_pending (id),
    check ((audit_seq is null) <> (audit_pending is null))
) strict;

insert into violation_sealed (violation_id, space_id, lot_id, operator_id, plate, note, warden,
    observed_at, status_at_observation, session_id, audit_seq, created_at)
select violation_id, space_id, lot_id, operator_id, plate, note, warden, observed_at,
    status_at_observation, session_id, audit_seq, created_at
from violation;

drop table violation;
alter table violation_sealed rename to violation;

create index violation_observed_idx on violation (observed_at);
create index violation_lot_observed_idx on violation (lot_id, observed_at);

-- Violations are records: nothing of them changes, except that the sealer gives a waiting
-- one its place in the chain, once.
create trigger violation_no_update before update of violation_id, space_id, lot_id,
    operator_id, plate, note, warden, observed_at, status_at_observation, session_id,
    created_at on violation
begin
    select raise(abort, 'violations are records: they are not changed');
end;

create trigger violation_sealed_once before update of audit_seq, audit_pending on violation
when old.audit_seq is not null or new.audit_seq is null or new.audit_pending is not null
begin
    select raise(abort, 'violations are records: they are not changed');
end;
