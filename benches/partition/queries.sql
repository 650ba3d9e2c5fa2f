-- The hot queries of qrpark, as the application sends them (src/store/), under
-- `explain (analyze, buffers)` on one layout, plus the pruned form each would take on the
-- monthly layout (`and ended_at is null` for active sessions). Writes are rolled back.
--
--   psql -v month_from=2026-11-01 -v month_to=2026-12-01 -f queries.sql
\set ON_ERROR_STOP on
set jit = off;

-- The sessions and spaces the queries ask about (the same in both layouts).
select s.space_id as busy_space, s.session_id as active_id, s.driver as active_driver,
       s.plate as active_plate, s.lot_id as lot
from session s where s.status = 'active' order by s.space_id limit 1 \gset
select sp.space_id as free_space, sp.lot_id as free_lot, l.operator_id as free_operator,
       t.tariff_id as free_tariff
from space sp join lot l on l.lot_id = sp.lot_id join tariff t on t.lot_id = l.lot_id
where not exists (select 1 from session s where s.space_id = sp.space_id and s.status = 'active')
order by sp.space_id limit 1 \gset
select session_id as stopped_id, driver as stopped_driver from session
where audit_seq >= (select (min(audit_seq) + max(audit_seq)) / 2 from session)
order by audit_seq limit 1 \gset

\echo '### start: the insert (one active session per space is checked here)'
begin;
explain (analyze, buffers, costs off)
insert into session (session_id, lot_id, space_id, operator_id, driver, tariff_id,
    tariff_version, currency, status, started_at, leave_by, created_at, updated_at, plate,
    stop_at, ends_at)
values (gen_random_uuid(), :'free_lot', :'free_space', :'free_operator', 'city-driver-new',
    :'free_tariff', 1, 'CNY', 'active', now(), now() + interval '1 day', now(), now(),
    '沪C12345', null, now() + interval '1 day');
rollback;

\echo '### start: the cap on a driver''s active sessions'
explain (analyze, buffers, costs off)
select count(*) from session where driver = :'active_driver' and status = 'active';
explain (analyze, buffers, costs off)
select count(*) from session where driver = :'active_driver' and status = 'active' and ended_at is null;

\echo '### scan: is the space occupied'
explain (analyze, buffers, costs off)
select count(*) from session where space_id = :'busy_space' and status = 'active';
explain (analyze, buffers, costs off)
select count(*) from session where space_id = :'busy_space' and status = 'active' and ended_at is null;

\echo '### enforcement: the space''s active session and the last one that stopped'
explain (analyze, buffers, costs off)
select session_id, status, ended_at from session where space_id in (:'busy_space') and status = 'active'
union all
select session_id, status, ended_at from session where session_id in (
    select (select t.session_id from session t
            where t.space_id = space.space_id and t.status = 'stopped'
            order by t.ended_at desc limit 1)
    from space where space.space_id in (:'busy_space'));

\echo '### enforcement: a plate''s active sessions'
explain (analyze, buffers, costs off)
select session_id from session where plate = :'active_plate' and status = 'active'
order by started_at desc;
explain (analyze, buffers, costs off)
select session_id from session where plate = :'active_plate' and status = 'active'
and ended_at is null order by started_at desc;

\echo '### a driver reads a stopped session of theirs (by id)'
explain (analyze, buffers, costs off)
select * from session where session_id = :'stopped_id' and driver = :'stopped_driver';

\echo '### a driver''s sessions, newest first'
explain (analyze, buffers, costs off)
select session_id from session where driver = :'stopped_driver'
order by started_at desc, session_id desc limit 20;

\echo '### stop: lock the session, write its pending event, stop it (moves the row on the monthly layout), seal it'
begin;
explain (analyze, buffers, costs off)
select status from session where session_id = :'active_id' for update;
insert into audit_pending (at, kind, entity_id, payload, place)
values (now(), 'session.stopped', :'active_id', '{}', 'session') returning id as pending \gset
explain (analyze, buffers, costs off)
update session set status = 'stopped', ended_at = now(), fee_minor = 250,
    fee_lines = '{}', updated_at = now(), audit_pending = :pending, ended_by = 'driver',
    stop_reason = null
where session_id = :'active_id' and status = 'active';
\echo '### the sealer gives the stopped session its place'
explain (analyze, buffers, costs off)
update session set audit_seq = v.column2, audit_hash = v.column3, audit_pending = null
from (values (:pending::bigint, 999999999999::bigint, decode(repeat('ab', 32), 'hex'))) as v
where session.audit_pending = v.column1;
rollback;

\echo '### the same lock where the stop names the default partition'
begin;
explain (analyze, buffers, costs off)
select status from session where session_id = :'active_id' and ended_at is null for update;
rollback;

-- The export's and the summary's pieces (src/store/export/mod.rs, audit_summary.rs).
select format('s.status = %L and s.audit_seq is not null and s.ended_at >= %L and s.ended_at < %L',
              'stopped', :'month_from', :'month_to') as in_month,
       format('st.session_ended_at >= %L and st.session_ended_at < %L',
              :'month_from', :'month_to') as settlements_in_month \gset
\set export_columns 's.session_id, s.operator_id, s.lot_id, sp.code, s.driver, s.started_at, s.ended_at, s.currency, s.fee_minor, s.tariff_version, s.fee_lines, st.status, st.reference, s.audit_seq, s.audit_hash, s.plate, s.ended_by, st.refunded_minor'
\set summary_columns 's.operator_id, s.lot_id, l.timezone, s.currency, s.ended_at, s.fee_minor, st.status as settlement_status, st.refunded_minor'

\echo '### export of the month: bounds'
explain (analyze, buffers, costs off)
select min(s.audit_seq), max(s.audit_seq), count(*) from session s where :in_month;
select format('st.session_audit_seq = s.audit_seq and st.session_audit_seq between %s and %s',
              min(s.audit_seq), max(s.audit_seq)) as by_place,
       format('s.audit_seq between %s and %s', min(s.audit_seq), max(s.audit_seq)) as in_places
from session s where :in_month \gset

\echo '### export of the month: the records (the plan the cursor streams)'
explain (analyze, buffers, costs off, timing off)
select :export_columns from session s join space sp on sp.space_id = s.space_id
left join settlement st on :by_place
where :in_month and :in_places order by s.audit_seq;

\echo '### audit summary of the month: the rows it aggregates'
explain (analyze, buffers, costs off, timing off)
select :summary_columns from session s join lot l on l.lot_id = s.lot_id
left join settlement st on st.session_id = s.session_id
where :in_month;

\echo '### audit summary of one lot over the month'
explain (analyze, buffers, costs off, timing off)
select :summary_columns from session s join lot l on l.lot_id = s.lot_id
left join settlement st on st.session_id = s.session_id
where :in_month and s.lot_id = :'lot';

\echo '### the summary of the month joining settlements by chain place, as the export does'
explain (analyze, buffers, costs off, timing off)
select :summary_columns from session s join lot l on l.lot_id = s.lot_id
left join settlement st on :by_place
where :in_month and :in_places;

select exists (select 1 from pg_attribute where attrelid = 'settlement'::regclass
               and attname = 'session_ended_at') as monthly \gset
\if :monthly
\echo '### monthly layout: the export with its settlements pruned to the month (partition key)'
explain (analyze, buffers, costs off, timing off)
select :export_columns from session s join space sp on sp.space_id = s.space_id
left join settlement st on :by_place and :settlements_in_month
where :in_month and :in_places order by s.audit_seq;

\echo '### monthly layout: the summary joining settlements in the same month (partition key)'
explain (analyze, buffers, costs off, timing off)
select :summary_columns from session s join lot l on l.lot_id = s.lot_id
left join settlement st on st.session_id = s.session_id and st.session_ended_at = s.ended_at
    and :settlements_in_month
where :in_month;

\echo '### monthly layout: the summary by chain place with settlements pruned to the month'
explain (analyze, buffers, costs off, timing off)
select :summary_columns from session s join lot l on l.lot_id = s.lot_id
left join settlement st on :by_place and :settlements_in_month
where :in_month and :in_places;
\endif
