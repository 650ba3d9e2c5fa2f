-- Exports page through stopped sessions by their place in the audit chain, so that place
-- is unique and every stopped session has one.
drop index session_audit_seq_idx;
create unique index session_audit_seq_key on session (audit_seq);

alter table session add constraint session_stopped_in_chain
    check (status = 'active' or (audit_seq is not null and audit_hash is not null));

-- An export's range (by end) gives the first and last place to page between.
create index session_stopped_ended_idx on session (ended_at, audit_seq) where status = 'stopped';

-- Exports read each session's settlement status and reference through this index alone.
create index settlement_session_export_idx on settlement (session_id) include (status, reference);
