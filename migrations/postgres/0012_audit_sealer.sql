-- Audited changes no longer take the audit chain's head. Each writes its event into
-- `audit_pending` in its own transaction, touching no row another writer needs, and a
-- sealer (src/store/audit.rs) moves pending events into `audit_event` in batches, in the
-- order they were written, under the head's lock (docs/audit.md, "Sealing"). Only sealers
-- touch `audit_head` from here on. The chain already sealed, and its head, stay as they are.

create table audit_pending (
    -- The order events were written in: the sealer chains them in this order.
    id bigint generated always as identity primary key,
    -- When the change happened, by its process's clock (the chain never shows an earlier
    -- instant than the event before it: the sealer takes the later of the two).
    at timestamptz not null,
    kind text not null,
    entity_id text not null,
    -- Canonical JSON, as `audit_event.payload`.
    payload text not null,
    -- The table whose row takes the event's place in the chain when it is sealed (that row
    -- points at this one through its `audit_pending` column until then), if any.
    place text,
    constraint audit_pending_kind_length check (char_length(kind) between 1 and 100),
    constraint audit_pending_place_known check (place in ('session', 'violation'))
);

-- A stopped session either has its place in the chain (`audit_seq`, `audit_hash`: its
-- `session.stopped` event, sealed) or waits for it (`audit_pending`: that event, not yet
-- sealed), never both. Exports hold sealed sessions only.
alter table session add column audit_pending bigint
    constraint session_audit_pending_fkey references audit_pending (id);
-- The sealer finds the sessions of a batch through this index, which holds only the few
-- sessions waiting (and so does the foreign key's check when it deletes pending rows).
create unique index session_audit_pending_key on session (audit_pending)
    where audit_pending is not null;
alter table session drop constraint session_stopped_in_chain;
alter table session add constraint session_stopped_in_chain
    check (status = 'active' or (audit_seq is not null and audit_hash is not null)
           or audit_pending is not null);
alter table session add constraint session_chain_place_once
    check (audit_pending is null or (audit_seq is null and audit_hash is null));

-- A settlement is written with its session's stop, before the stop is sealed: its copy of
-- the session's chain place (0007) is empty until then, and filled by the database when the
-- sealer gives the session its place. The foreign key onto the session's (id, place) holds
-- it to the session's place as soon as it has one.
alter table settlement alter column session_audit_seq drop not null;

create function session_sealed() returns trigger language plpgsql as $$
begin
    update settlement set session_audit_seq = new.audit_seq
        where session_id = new.session_id;
    return null;
end
$$;

-- Only the moment of sealing: a chain place changed afterwards is refused by the foreign
-- key as before, not carried along.
create trigger session_sealed after update of audit_seq on session
    for each row when (old.audit_seq is null and new.audit_seq is not null)
    execute function session_sealed();

-- A violation likewise waits for its place: exactly one of `audit_seq` and `audit_pending`.
alter table violation alter column audit_seq drop not null;
alter table violation add column audit_pending bigint
    constraint violation_audit_pending_fkey references audit_pending (id);
create unique index violation_audit_pending_key on violation (audit_pending)
    where audit_pending is not null;
alter table violation add constraint violation_in_chain
    check ((audit_seq is null) <> (audit_pending is null));

-- Violations are records: nothing of them changes, except that the sealer gives a waiting
-- one its place in the chain, once.
drop trigger violation_no_update on violation;
create trigger violation_no_update before update of violation_id, space_id, lot_id,
    operator_id, plate, note, warden, observed_at, status_at_observation, session_id,
    created_at on violation
    for each row execute function violation_immutable();
create trigger violation_sealed_once before update of audit_seq, audit_pending on violation
    for each row when (old.audit_seq is not null or new.audit_seq is null
                       or new.audit_pending is not null)
    execute function violation_immutable();
