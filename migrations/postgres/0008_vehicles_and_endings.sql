-- Vehicles, sessions that end themselves, and enforcement (docs/enforcement.md).

-- A lot may require a plate on every session (the demo lot does).
alter table lot add column plate_required boolean not null default false;

alter table session
    -- The plate, normalised by the application (province character + 2-10 of A-Z0-9);
    -- erased (set null) once the session has been stopped longer than the retention period.
    add column plate text,
    add column plate_erased_at timestamptz,
    -- The driver's planned end; after the start and not after leave_by.
    add column stop_at timestamptz,
    -- When the scheduler must stop the session: the earlier of stop_at and leave_by.
    add column ends_at timestamptz,
    -- How the session ended, and the operator's reason when it stopped it.
    add column ended_by text,
    add column stop_reason text;

-- Every session stopped before this migration was stopped by its driver; every one still
-- active ends by itself at its maximum stay, if it has one.
update session set ended_by = 'driver' where status = 'stopped';
update session set ends_at = leave_by where status = 'active';

alter table session
    add constraint session_plate_form check (plate is null or char_length(plate) between 2 and 11),
    add constraint session_stop_at_in_stay check (
        stop_at is null or (stop_at > started_at and (leave_by is null or stop_at <= leave_by))),
    add constraint session_ended_by_known check (
        ended_by is null or ended_by in ('driver', 'planned', 'max_stay', 'operator')),
    add constraint session_stopped_ended_by check ((status = 'stopped') = (ended_by is not null)),
    add constraint session_stop_reason_by_operator check (
        stop_reason is null or (ended_by = 'operator' and char_length(stop_reason) between 1 and 500));

-- The scheduler's queue: active sessions by the instant they must end.
create index session_due_idx on session (ends_at) where status = 'active' and ends_at is not null;
-- Wardens search active sessions by plate; the cap on active sessions counts by driver.
create index session_active_plate_idx on session (plate) where status = 'active';
create index session_active_driver_idx on session (driver) where status = 'active';
-- A warden's check reads the last session that ended on each space.
create index session_space_ended_idx on session (space_id, ended_at);
-- Retention finds stopped sessions whose plate is still held.
create index session_plate_held_idx on session (ended_at) where plate is not null and status = 'stopped';

-- What a warden recorded: a vehicle on a space it had not paid for.
create table violation (
    violation_id uuid primary key,
    space_id uuid not null references space (space_id),
    lot_id uuid not null references lot (lot_id),
    operator_id uuid not null references operator (operator_id),
    plate text not null,
    note text,
    -- The warden's city identity subject.
    warden text not null,
    observed_at timestamptz not null,
    -- What the space showed: `unpaid`, or `paid` for another vehicle.
    status_at_observation text not null,
    -- The session active on the space at the time, if any (another plate's).
    session_id uuid references session (session_id),
    audit_seq bigint not null,
    created_at timestamptz not null,
    constraint violation_audit_seq_key unique (audit_seq),
    constraint violation_plate_form check (char_length(plate) between 2 and 11),
    constraint violation_note_length check (note is null or char_length(note) between 1 and 500),
    constraint violation_warden_length check (char_length(warden) between 1 and 255),
    constraint violation_status_known check (status_at_observation in ('paid', 'unpaid'))
);

create index violation_observed_idx on violation (observed_at);
create index violation_lot_observed_idx on violation (lot_id, observed_at);

create function violation_immutable() returns trigger language plpgsql as $$
begin
    raise exception 'violations are records: they are not changed';
end;
$$;

create trigger violation_no_update before update on violation
    for each row execute function violation_immutable();

-- The key of the keyed hash (HMAC-SHA256) by which the audit chain commits to a plate
-- without holding it, so that erasing a plate never breaks the chain. One row.
create table plate_key (
    id integer primary key check (id = 1),
    secret bytea not null check (octet_length(secret) = 32)
);

insert into plate_key (id, secret) values (1, decode(
    replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', ''),
    'hex'));
