-- Exports page through stopped sessions by their place in the audit chain, so that place
-- is unique and every stopped session has one.
drop index session_audit_seq_idx;
create unique index session_audit_seq_key on session (audit_seq);

create trigger session_stopped_in_chain_insert before insert on session
when new.status = 'stopped' and (new.audit_seq is null or new.audit_hash is null)
begin
    select raise(abort, 'a stopped session has its place in the audit chain');
end;

create trigger session_stopped_in_chain_update before update on session
when new.status = 'stopped' and (new.audit_seq is null or new.audit_hash is null)
begin
    select raise(abort, 'a stopped session has its place in the audit chain');
end;

-- An export's range (by end) gives the first and last place to page between.
create index session_stopped_ended_idx on session (ended_at, audit_seq) where status = 'stopped';

-- Exports read each session's settlement status and reference through this index alone.
create index settlement_session_export_idx on settlement (session_id, status, reference);
