-- Generates :sessions stopped sessions (and their settlements) ending over the :days days
-- before now, plus one active session on every other space, into a qrpark database that
-- has been migrated and seeded through the API (seed.py: operators, lots, tariffs,
-- spaces). Rows are written as qrpark writes them, sealed (audit_seq, audit_hash): what the
-- export and the audit summary read. Scratch databases only.
--
--   psql -v sessions=10000000 -v days=122 -v retention_days=90 -f generate.sql
--
-- Optional: -v now=... (the instant the window ends; default now()), -v active_now=...
-- (when the active sessions started, up to three hours before; default :now) and
-- -v chain_head=... (the chain's head before the generated places; default audit_head's):
-- the same values give the same rows, so a second layout can hold the same data.
-- session and settlement may be plain or partitioned (monthly.sql run on them empty).
--
-- The chain's events themselves (audit_event) are not generated: the export and the summary
-- copy each session's place (audit_seq, audit_hash) and never read them. Their size is
-- measured on the real load (sample.py), and audit_head is moved past the generated places
-- so that a sealer continues after them.
\set ON_ERROR_STOP on
\timing on

-- A bulk load as pg_restore does it: the keys, indexes and foreign keys of session and
-- settlement are set aside (their definitions kept), the rows written without per-row
-- triggers (settlement's copy of its session's place is written here directly), then
-- everything is made again as it was: each index built once, each foreign key checked once
-- over all the rows. Check constraints stay on throughout.
set session_replication_role = replica;
set maintenance_work_mem = '512MB';
set work_mem = '256MB';

-- (On the monthly layout, the partitions' own foreign keys among a month's tables too.)
create temporary table set_aside as
with tables as (
    select 'session'::regclass union select 'settlement'::regclass
    union select relid from pg_partition_tree('session')
    union select relid from pg_partition_tree('settlement'))
select 1 as step, format('alter table %s add constraint %I %s', conrelid::regclass, conname,
           pg_get_constraintdef(oid)) as make,
       format('alter table %s drop constraint %I', conrelid::regclass, conname) as drop_it
from pg_constraint
where contype = 'f' and conparentid = 0
  and (conrelid in (select * from tables) or confrelid in (select * from tables))
union all
select 2, format('alter table %s add constraint %I %s', conrelid::regclass, conname,
           pg_get_constraintdef(oid)),
       format('alter table %s drop constraint %I', conrelid::regclass, conname)
from pg_constraint
where contype in ('p', 'u') and conrelid in ('session'::regclass, 'settlement'::regclass)
union all
-- (A partitioned table's index is defined ON ONLY the parent: made again on all partitions.)
select 3, replace(pg_get_indexdef(i.indexrelid), ' ON ONLY ', ' ON '),
       format('drop index %s', i.indexrelid::regclass)
from pg_index i
where i.indrelid in ('session'::regclass, 'settlement'::regclass)
  and not exists (select 1 from pg_constraint c where c.conindid = i.indexrelid);
select drop_it from set_aside order by step \gexec

-- The spaces, numbered, with their lots and tariffs.
create temporary table sp as
select row_number() over (order by sp.space_id) - 1 as k, sp.space_id, sp.lot_id,
       l.operator_id, t.tariff_id, t.version
from space sp join lot l on l.lot_id = sp.lot_id
join lateral (select tariff_id, version from tariff where tariff.lot_id = l.lot_id
              order by version desc limit 1) t on true;
create unique index on sp (k);
analyze sp;

select count(*) as spaces from sp \gset
\if :{?chain_head}
\else
select seq as chain_head from audit_head \gset
\endif
\if :{?now}
\else
select now() as now \gset
\endif
\if :{?active_now}
\else
select :'now' as active_now \gset
\endif

-- The window: :days days ending at :now; each session i ends at since + i * step.
select :'now'::timestamptz - make_interval(days => :days) as since,
       make_interval(secs => :days * 86400.0 / :sessions) as step,
       :'now'::timestamptz - make_interval(days => :retention_days) as erased_before \gset

-- Stopped sessions, in the order they ended, each with its place in the chain: the
-- started, stopped and settled events of a session are three places, the stop's the middle.
insert into session (session_id, lot_id, space_id, operator_id, driver, tariff_id,
    tariff_version, currency, status, started_at, leave_by, ended_at, fee_minor, fee_lines,
    created_at, updated_at, audit_seq, audit_hash, plate, plate_erased_at, stop_at, ends_at,
    ended_by, stop_reason, audit_pending)
select
    (lpad(to_hex((extract(epoch from started_at) * 1000)::bigint), 12, '0') || '7'
     || lpad(to_hex(i % 4096), 3, '0') || '8' || lpad(to_hex(i), 15, '0'))::uuid,
    sp.lot_id, sp.space_id, sp.operator_id, 'city-driver-' || d, sp.tariff_id, sp.version,
    'CNY', 'stopped', started_at, started_at + interval '1440 minutes', ended_at,
    fee, '{"currency":"CNY","lines":[{"amount":"' || amount || '","charged":"' || amount
        || '","from":"'
        || to_char(started_at at time zone 'Asia/Shanghai', 'YYYY-MM-DD"T"HH24:MI:SS.US"+08:00"')
        || '","increments":' || increments || ',"rule":"day","to":"'
        || to_char(ended_at at time zone 'Asia/Shanghai', 'YYYY-MM-DD"T"HH24:MI:SS.US"+08:00"')
        || '"}],"tariff_version":1,"total":"' || amount || '"}',
    started_at, ended_at + interval '1 second', :chain_head + 3 * i - 1,
    sha256(int8send(i::bigint)),
    case when ended_at >= :'erased_before' then plate end,
    case when ended_at < :'erased_before' then ended_at + make_interval(days => :retention_days) end,
    case when ended_by = 'planned' then ended_at end,
    case when ended_by = 'planned' then ended_at else started_at + interval '1440 minutes' end,
    ended_by, null, null
from (
    select i, ended_at, ended_at - make_interval(secs => minutes * 60) as started_at,
           greatest(ceil(minutes / 15.0), 1)::int as increments,
           greatest(ceil(minutes / 15.0), 1)::bigint * 250 as fee,
           to_char(greatest(ceil(minutes / 15.0), 1) * 2.50, 'FM999990.00') as amount,
           (i * 31) % 500000 as d,
           '京' || chr(65 + ((i * 31) % 500000) % 26)
               || lpad((((i * 31) % 500000) * 7 % 100000)::text, 5, '0') as plate,
           case when i % 10 = 0 then 'planned' else 'driver' end as ended_by,
           (i::bigint * 7919) % :spaces as k
    from (select i, :'since'::timestamptz + i * :'step'::interval as ended_at,
                 10 + (i * 2654435761) % 230 as minutes
          from generate_series(1, :sessions) as i) g
) s
join sp on sp.k = s.k;

-- On the monthly layout a settlement also carries its session's end (its partition key).
select case when ended then ', session_ended_at' else '' end as ended_column,
       case when ended then ', s.ended_at' else '' end as ended_value
from (select exists (select 1 from pg_attribute where attrelid = 'settlement'::regclass
                     and attname = 'session_ended_at' and not attisdropped) as ended) e \gset

-- A settlement each, as the stop writes it and the gateway's answer leaves it: most
-- settled, one in 97 in arrears, one in 1009 in review, one in 100 of the settled ones
-- refunded in part.
insert into settlement (settlement_id, session_id, reference, driver, operator_id, currency,
    amount_minor, status, attempts, last_error, created_at, updated_at, settled_at,
    session_audit_seq, arrears_since, refunded_minor, payment_round :ended_column)
select
    (lpad(to_hex((extract(epoch from s.ended_at) * 1000)::bigint), 12, '0') || '7'
     || substr(h.hex, 1, 3) || '9' || substr(h.hex, 4, 15))::uuid,
    s.session_id, 'QRP-' || upper(substr(h.hex, 19, 12)), s.driver,
    s.operator_id, s.currency, s.fee_minor, st.status, 1,
    case when st.status = 'review' then 'gave up after 16 attempts' end,
    s.ended_at, s.ended_at + interval '2 seconds',
    case when st.status = 'settled' then s.ended_at + interval '2 seconds' end,
    s.audit_seq,
    case when st.status = 'arrears' then s.ended_at + interval '2 seconds' end,
    case when st.status = 'settled' and s.audit_seq % 100 = 0 then least(50, s.fee_minor) else 0 end,
    1 :ended_value
from session s
cross join lateral (select md5(s.session_id::text) as hex) h
cross join lateral (select case when s.audit_seq % 97 = 0 then 'arrears'
                                when s.audit_seq % 1009 = 0 then 'review'
                                else 'settled' end as status) st
where s.status = 'stopped' and s.audit_seq > :chain_head;

-- Now: one active session on every other space, started within the last three hours.
insert into session (session_id, lot_id, space_id, operator_id, driver, tariff_id,
    tariff_version, currency, status, started_at, leave_by, created_at, updated_at, plate,
    ends_at)
select (lpad(to_hex((extract(epoch from started_at) * 1000)::bigint), 12, '0') || '7abc8'
        || lpad(to_hex(k), 15, '0'))::uuid,
       lot_id, space_id, operator_id, 'city-driver-active-' || k, tariff_id, version, 'CNY',
       'active', started_at, started_at + interval '1440 minutes', started_at, started_at,
       '沪B' || lpad(k::text, 5, '0'), started_at + interval '1440 minutes'
from (select sp.*, :'active_now'::timestamptz - make_interval(secs => (k * 7) % 10800) as started_at
      from sp where k % 2 = 0) a;

-- The chain's head after the generated places (the last session's settled event).
update audit_head set seq = :chain_head + 3 * :sessions + 1,
    hash = decode(md5('head') || md5('head'), 'hex'), at = :'active_now'::timestamptz;

reset session_replication_role;

-- Keys and indexes as they were, then the foreign keys, each checked over every row.
select make from set_aside order by step desc \gexec

-- What autovacuum would have done by the time anyone exports (it is off on this cluster).
vacuum (analyze) session;
vacuum (analyze) settlement;
checkpoint;
