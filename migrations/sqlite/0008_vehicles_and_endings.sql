-- Vehicles, sessions that end themselves, and enforcement (docs/enforcement.md).

-- A lot may require a plate on every session (the demo lot does).
alter table lot add column plate_required integer not null default 0
    check (plate_required in (0, 1));

-- The plate, normalised by the application (province character + 2-10 of A-Z0-9); erased
-- (set null) once the session has been stopped longer than the retention period.
alter table session add column plate text
    check (plate is null or length(plate) between 2 and 11);
-- When the plate was erased, so that an erased plate is told apart from none given.
alter table session add column plate_erased_at text;
-- The driver's planned end; after the start and not after leave_by.
alter table session add column stop_at text
    check (stop_at is null or (stop_at > started_at and (leave_by is null or stop_at <= leave_by)));
-- When the scheduler must stop the session: the earlier of stop_at and leave_by.
alter table session add column ends_at text;
-- How the session ended, and the operator's reason when it stopped it.
alter table session add column ended_by text
    check (ended_by is null or ended_by in ('driver', 'planned', 'max_stay', 'operator'));
alter table session add column stop_reason text
    check (stop_reason is null or length(stop_reason) between 1 and 500);

-- Every session stopped before this migration was stopped by its driver; every one still
-- active ends by itself at its maximum stay, if it has one.
update session set ended_by = 'driver' where status = 'stopped';
update session set ends_at = leave_by where status = 'active';

-- A stopped session says how it ended; an active one has not ended. (SQLite cannot add a
-- table check to an existing table, so triggers hold the rule, as in 0006.)
create trigger session_ended_by_insert before insert on session
when (new.status = 'stopped') != (new.ended_by is not null)
    or (new.stop_reason is not null and new.ended_by is not 'operator')
begin
    select raise(abort, 'a stopped session says how it ended, and only then');
end;

create trigger session_ended_by_update before update on session
when (new.status = 'stopped') != (new.ended_by is not null)
    or (new.stop_reason is not null and new.ended_by is not 'operator')
begin
    select raise(abort, 'a stopped session says how it ended, and only then');
end;

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
    audit_seq integer not null unique,
    created_at text not null
) strict;

create index violation_observed_idx on violation (observed_at);
create index violation_lot_observed_idx on violation (lot_id, observed_at);

create trigger violation_no_update before update on violation
begin
    select raise(abort, 'violations are records: they are not changed');
end;

-- The key of the keyed hash (HMAC-SHA256) by which the audit chain commits to a plate
-- without holding it, so that erasing a plate never breaks the chain. One row.
create table plate_key (
    id integer primary key check (id = 1),
    secret blob not null check (length(secret) = 32)
) strict;

insert into plate_key (id, secret) values (1, randomblob(32));
