-- Rows and bytes per row of qrpark's growing tables (plain or partitioned: a partitioned
-- table counts all its partitions), then each index of session and settlement.
--
--   psql -f sizes.sql
create function pg_temp.exact_rows(t regclass) returns bigint language plpgsql as $$
declare n bigint;
begin
    execute format('select count(*) from %s', t) into n;
    return n;
end
$$;

create temporary table counted as
select t.oid, t.relname, pg_temp.exact_rows(t.oid) as rows
from pg_class t
where t.relnamespace = 'public'::regnamespace and t.relispartition = false
  and t.relname in ('session', 'settlement', 'ledger_entry', 'audit_event', 'audit_pending',
                    'refund', 'settlement_outbox', 'idempotency_key', 'violation');

select t.relname as "table", t.rows,
       count(*) filter (where p.isleaf and p.relid <> t.oid) as partitions,
       pg_size_pretty(sum(pg_relation_size(p.relid))) as heap,
       pg_size_pretty(sum(pg_indexes_size(p.relid))) as indexes,
       pg_size_pretty(sum(pg_total_relation_size(p.relid))) as total,
       round(sum(pg_relation_size(p.relid)) / nullif(t.rows, 0)) as heap_b_per_row,
       round(sum(pg_indexes_size(p.relid)) / nullif(t.rows, 0)) as index_b_per_row,
       round(sum(pg_total_relation_size(p.relid)) / nullif(t.rows, 0)) as total_b_per_row
from counted t cross join lateral (
    select relid, isleaf from pg_partition_tree(t.oid)
    union all select t.oid, true where t.oid not in (select relid from pg_partition_tree(t.oid))) p
group by t.oid, t.relname, t.rows
order by sum(pg_total_relation_size(p.relid)) desc;

-- Each index, summed over partitions (by the partitioned index it belongs to, or by its
-- own name with the partition's part starred for an index of partitions only).
select t.relname as "table",
       coalesce(root.relname, regexp_replace(ic.relname, '^(session|settlement)_(p\d{4}_\d{2}|default)_', '\1_*_')) as "index",
       count(*) as partitions,
       pg_size_pretty(sum(pg_relation_size(i.indexrelid))) as size,
       round(sum(pg_relation_size(i.indexrelid)) / nullif(t.rows, 0)) as b_per_row
from counted t cross join lateral (
    select relid, isleaf from pg_partition_tree(t.oid)
    union all select t.oid, true where t.oid not in (select relid from pg_partition_tree(t.oid))) p
join pg_index i on i.indrelid = p.relid
join pg_class ic on ic.oid = i.indexrelid
left join pg_class root on root.oid = pg_partition_root(i.indexrelid) and root.oid <> i.indexrelid
where t.relname in ('session', 'settlement') and p.isleaf
group by t.relname, t.rows, 2
order by t.relname, sum(pg_relation_size(i.indexrelid)) desc;
