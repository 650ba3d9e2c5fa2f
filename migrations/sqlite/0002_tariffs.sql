-- Tariff versions: every PUT stores a new immutable version; sessions lock the version in
-- force at their start, so a version can never change or disappear.

create table tariff (
    tariff_id blob primary key check (length(tariff_id) = 16),
    lot_id blob not null references lot (lot_id),
    version integer not null check (version >= 1),
    -- The canonical JSON document (spec/tariff.md), exactly as validated and shown.
    document text not null check (json_valid(document)),
    currency text not null check (length(currency) = 3 and currency = upper(currency)),
    -- The version prices every instant from here until the next version's effective_from.
    effective_from text not null,
    created_at text not null,
    constraint tariff_lot_version_key unique (lot_id, version)
) strict;

create index tariff_lot_effective_idx on tariff (lot_id, effective_from desc, version desc);

create trigger tariff_no_update before update on tariff
begin
    select raise(abort, 'tariff versions are immutable');
end;

create trigger tariff_no_delete before delete on tariff
begin
    select raise(abort, 'tariff versions are immutable');
end;
