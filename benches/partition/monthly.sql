-- Turns a copy of a plain qrpark database (generate.sql's) into the monthly layout of
-- docs/operations.md, "A city on PostgreSQL", with pg_partman 4.7 (Debian's
-- postgresql-15-partman): the prototype of the migration, run on a scratch copy.
--
--   psql -v events_per_month=300000000 -f monthly.sql
--
-- On a database whose sessions are not generated yet, name the first month:
-- -v first_month=2026-08-01 (generate.sql then writes into the partitioned tables).
--
-- - session: range-partitioned by ended_at, one partition a month (pg_partman); active
--   sessions (ended_at null) live in the DEFAULT partition, which holds nothing else
--   (check constraint), and carries the partial unique index "one active session per
--   space"; a stop moves its row into its month.
-- - settlement: range-partitioned by its session's ended_at (a new column), the same months,
--   so a month of sessions and its settlements are detached together.
-- - refund and ledger_entry: by their session's end too, monthly; audit_event: by seq,
--   ranges sized to a month at the planned rate. (Nearly empty in the scratch copy: their
--   DDL is what is tried.)
-- - Foreign keys among these four go partition to partition within a month
--   (month_foreign_keys()), so that a month is detached without a scan of the others.
--
-- A primary key or unique constraint of a partitioned table must include the partition
-- key: those are on the parent (and are what foreign keys point at); a narrower key that
-- each partition keeps exactly is given to every partition by pg_partman's template table.
\set ON_ERROR_STOP on
\timing on
set maintenance_work_mem = '512MB';

create schema if not exists partman;
create extension if not exists pg_partman schema partman;

\if :{?first_month}
\else
select date_trunc('month', min(ended_at)) as first_month from session \gset
\endif

-- One transaction: the database is either as it was or wholly converted.
begin;

-- 1. The plain tables step aside, with their indexes (index names are per schema).
alter table session rename to session_plain;
alter table settlement rename to settlement_plain;
alter table refund rename to refund_plain;
alter table ledger_entry rename to ledger_entry_plain;
alter table audit_event rename to audit_event_plain;
select format('alter index %I rename to %I', c.relname, c.relname || '_plain')
from pg_index i join pg_class c on c.oid = i.indexrelid
where i.indrelid in ('session_plain'::regclass, 'settlement_plain'::regclass,
                     'refund_plain'::regclass, 'ledger_entry_plain'::regclass,
                     'audit_event_plain'::regclass) \gexec
-- Foreign keys onto the plain tables from outside them go: they are made again onto the
-- partitioned ones.
select format('alter table %s drop constraint %I', conrelid::regclass, conname)
from pg_constraint
where contype = 'f'
  and confrelid in ('session_plain'::regclass, 'settlement_plain'::regclass, 'refund_plain'::regclass)
  and conrelid not in ('session_plain'::regclass, 'settlement_plain'::regclass,
                       'refund_plain'::regclass, 'ledger_entry_plain'::regclass) \gexec

-- 2. session, partitioned by ended_at.
create table session (like session_plain including defaults including constraints)
    partition by range (ended_at);
-- What each partition keeps exactly (pg_partman's template): every chain place once.
create table partman.session_template (like session_plain);
alter table partman.session_template
    add constraint session_template_audit_seq_key unique (audit_seq);
select partman.create_parent('public.session', 'ended_at', 'native', 'monthly',
    p_premake := 4, p_start_partition := :'first_month',
    p_template_table := 'partman.session_template');
-- The default partition holds the active sessions and nothing else: a stop whose month has
-- no partition fails instead of landing there (pg_partman makes months 4 ahead), and a new
-- month is attached without scanning it.
alter table session_default add constraint session_default_active check (ended_at is null);
-- Every active session once (a stopped one is held once by session_key below).
alter table session_default add primary key (session_id);
update partman.part_config set ignore_default_data = true where parent_table = 'public.session';

insert into session select * from session_plain;

-- 3. settlement, partitioned by its session's ended_at.
create table settlement (like settlement_plain including defaults including constraints,
    session_ended_at timestamptz not null) partition by range (session_ended_at);
create table partman.settlement_template (like settlement);
alter table partman.settlement_template
    add constraint settlement_template_reference_key unique (reference);
select partman.create_parent('public.settlement', 'session_ended_at', 'native', 'monthly',
    p_premake := 4, p_start_partition := :'first_month',
    p_template_table := 'partman.settlement_template');
alter table settlement_default add constraint settlement_default_empty check (false) not valid;
update partman.part_config set ignore_default_data = true where parent_table = 'public.settlement';

insert into settlement
select st.*, s.ended_at from settlement_plain st
join session_plain s on s.session_id = st.session_id;

-- 4. The partitioned tables' keys and indexes (built partition by partition).
alter table session
    add constraint session_key unique (session_id, ended_at),
    add constraint session_chain_place_key unique (session_id, audit_seq, ended_at);
create unique index session_audit_pending_key on session (audit_pending, ended_at)
    where audit_pending is not null;
create unique index session_one_active_per_space on session_default (space_id)
    where status = 'active';
-- The other indexes as they were, built on the partitioned table (so on every partition).
select regexp_replace(replace(pg_get_indexdef(i.indexrelid), ' ON public.session_plain ', ' ON session '),
                      '^CREATE INDEX (\S+)_plain ', 'CREATE INDEX \1 ')
from pg_index i where i.indrelid = 'session_plain'::regclass and not i.indisunique \gexec
select format('alter table session add constraint %I %s', conname, pg_get_constraintdef(oid))
from pg_constraint where conrelid = 'session_plain'::regclass and contype = 'f' \gexec

-- (The settlement's foreign keys onto its session are per month: section 7.)
alter table settlement
    add constraint settlement_pkey primary key (settlement_id, session_ended_at),
    add constraint settlement_session_key unique (session_id, session_ended_at),
    add constraint settlement_operator_id_fkey foreign key (operator_id) references operator;
select regexp_replace(replace(pg_get_indexdef(i.indexrelid), ' ON public.settlement_plain ', ' ON settlement '),
                      '^CREATE INDEX (\S+)_plain ', 'CREATE INDEX \1 ')
from pg_index i where i.indrelid = 'settlement_plain'::regclass and not i.indisunique
  and i.indexrelid <> 'settlement_export_idx_plain'::regclass \gexec
-- The export's settlements, pruned to the range's months by the partition key: with the key
-- in the index, still read by the index alone.
create index settlement_export_idx on settlement (session_audit_seq)
    include (status, reference, refunded_minor, session_ended_at);

-- 5. The triggers, pruned by the partition key where they look rows up.
create or replace function settlement_chain_place() returns trigger language plpgsql as $$
begin
    select s.audit_seq into new.session_audit_seq from session s
        where s.session_id = new.session_id and s.ended_at = new.session_ended_at;
    return new;
end
$$;
create trigger settlement_chain_place before insert on settlement
    for each row execute function settlement_chain_place();
create or replace function session_sealed() returns trigger language plpgsql as $$
begin
    update settlement set session_audit_seq = new.audit_seq
        where session_id = new.session_id and session_ended_at = new.ended_at;
    return null;
end
$$;
create trigger session_sealed after update of audit_seq on session
    for each row when (old.audit_seq is null and new.audit_seq is not null)
    execute function session_sealed();
create trigger settlement_no_delete before delete on settlement
    for each row execute function ledger_append_only();

-- 6. What points at a settlement or a refund carries its session's end too. refund and
-- ledger_entry are partitioned like settlement, by the session's end; the outboxes (queues
-- of a few rows) point at the partitioned tables as a whole.
create table refund (like refund_plain including defaults including constraints,
    session_ended_at timestamptz not null) partition by range (session_ended_at);
create table partman.refund_template (like refund);
alter table partman.refund_template
    add constraint refund_template_reference_key unique (reference);
select partman.create_parent('public.refund', 'session_ended_at', 'native', 'monthly',
    p_premake := 4, p_start_partition := :'first_month',
    p_template_table := 'partman.refund_template');
alter table refund_default add constraint refund_default_empty check (false) not valid;
alter table refund add primary key (refund_id, session_ended_at),
    add foreign key (operator_id) references operator;
select regexp_replace(replace(pg_get_indexdef(i.indexrelid), ' ON public.refund_plain ', ' ON refund '),
                      '^CREATE INDEX (\S+)_plain ', 'CREATE INDEX \1 ')
from pg_index i where i.indrelid = 'refund_plain'::regclass and not i.indisunique \gexec
create trigger refund_no_delete before delete on refund
    for each row execute function ledger_append_only();
insert into refund select r.*, st.session_ended_at from refund_plain r
    join settlement st on st.settlement_id = r.settlement_id;

alter table settlement_outbox add column session_ended_at timestamptz not null,
    add foreign key (settlement_id, session_ended_at) references settlement;
alter table refund_outbox add column session_ended_at timestamptz not null,
    add foreign key (refund_id, session_ended_at) references refund;
-- A violation names the session that was active on the space (ended_at null then): a
-- foreign key would have to follow the row into its month; the chain records the pair.

create table ledger_entry (like ledger_entry_plain including defaults including constraints,
    session_ended_at timestamptz not null) partition by range (session_ended_at);
select partman.create_parent('public.ledger_entry', 'session_ended_at', 'native', 'monthly',
    p_premake := 4, p_start_partition := :'first_month');
alter table ledger_entry_default add constraint ledger_entry_default_empty check (false) not valid;
alter table ledger_entry add primary key (ledger_entry_id, session_ended_at);
create index ledger_entry_settlement_idx on ledger_entry (settlement_id);
create trigger ledger_entry_no_change before update or delete on ledger_entry
    for each row execute function ledger_append_only();
insert into ledger_entry select l.*, st.session_ended_at from ledger_entry_plain l
    join settlement st on st.settlement_id = l.settlement_id;

-- 7. Foreign keys among a month's partitions: a settlement, refund or ledger entry of month
-- M points at its session, settlement or refund in month M. Detaching a month then checks
-- no other month (a foreign key onto a whole partitioned table makes PostgreSQL look for
-- rows still pointing into the month being detached: a scan of every month, under lock).
-- Run after every pg_partman maintenance that makes new months.
create function month_foreign_keys() returns integer language plpgsql as $fn$
declare
    m text;
    made integer := 0;
    wanted record;
begin
    for m in select substring(c.relname from '^session_(p\d{4}_\d{2})$')
             from pg_inherits i join pg_class c on c.oid = i.inhrelid
             where i.inhparent = 'session'::regclass and c.relname ~ '^session_p\d{4}_\d{2}$'
    loop
        for wanted in select * from (values
            ('settlement_' || m, 'session_' || m, 'settlement_' || m || '_session_fkey',
             format('(session_id, session_ended_at) references %I (session_id, ended_at)', 'session_' || m)),
            ('settlement_' || m, 'session_' || m, 'settlement_' || m || '_chain_place_fkey',
             format('(session_id, session_audit_seq, session_ended_at) references %I (session_id, audit_seq, ended_at)', 'session_' || m)),
            ('refund_' || m, 'session_' || m, 'refund_' || m || '_session_fkey',
             format('(session_id, session_ended_at) references %I (session_id, ended_at)', 'session_' || m)),
            ('refund_' || m, 'settlement_' || m, 'refund_' || m || '_settlement_fkey',
             format('(settlement_id, session_ended_at) references %I (settlement_id, session_ended_at)', 'settlement_' || m)),
            ('ledger_entry_' || m, 'settlement_' || m, 'ledger_entry_' || m || '_settlement_fkey',
             format('(settlement_id, session_ended_at) references %I (settlement_id, session_ended_at)', 'settlement_' || m)),
            ('ledger_entry_' || m, 'refund_' || m, 'ledger_entry_' || m || '_refund_fkey',
             format('(refund_id, session_ended_at) references %I (refund_id, session_ended_at)', 'refund_' || m))
        ) as w (tab, target, name, def)
        loop
            if to_regclass(wanted.tab) is not null and to_regclass(wanted.target) is not null
               and not exists (
                select 1 from pg_constraint where conname = wanted.name
                and conrelid = to_regclass(wanted.tab)) then
                execute format('alter table %I add constraint %I foreign key %s',
                               wanted.tab, wanted.name, wanted.def);
                made := made + 1;
            end if;
        end loop;
    end loop;
    return made;
end
$fn$;
select month_foreign_keys() as month_foreign_keys_made;

-- 8. audit_event by seq: its primary key stays the chain's order, exactly.
create table audit_event (like audit_event_plain including defaults including constraints)
    partition by range (seq);
create table partman.audit_event_template (like audit_event);
alter table partman.audit_event_template add constraint audit_event_template_hash_key unique (hash);
select partman.create_parent('public.audit_event', 'seq', 'native', :'events_per_month',
    p_premake := 2, p_constraint_cols := array['at'],
    p_template_table := 'partman.audit_event_template');
-- The check constraint on `at` goes on every partition but the newest two (the default is
-- thirty back, years of the city).
update partman.part_config set optimize_constraint = 2 where parent_table = 'public.audit_event';
alter table audit_event add primary key (seq);
create index audit_event_kind_at_idx on audit_event (kind, at);
create trigger audit_event_no_change before update or delete on audit_event
    for each row execute function ledger_append_only();
insert into audit_event select * from audit_event_plain;

-- 9. The plain tables go; statistics and the visibility map as autovacuum would leave them.
drop table ledger_entry_plain, audit_event_plain, refund_plain, settlement_plain, session_plain;
commit;
vacuum (analyze) session;
vacuum (analyze) settlement;
vacuum (analyze) refund;
vacuum (analyze) ledger_entry;
vacuum (analyze) audit_event;
checkpoint;
select partman.run_maintenance();
select parent_table, control, partition_interval, premake from partman.part_config;
