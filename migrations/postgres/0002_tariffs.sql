-- Tariff versions: every PUT stores a new immutable version; sessions lock the version in
-- force at their start, so a version can never change or disappear.

create table tariff (
    tariff_id uuid primary key,
    lot_id uuid not null references lot (lot_id),
    version integer not null,
    -- The canonical JSON document (spec/tariff.md), exactly as validated and shown.
    document text not null,
    currency text not null,
    -- The version prices every instant from here until the next version's effective_from.
    effective_from timestamptz not null,
    created_at timestamptz not null,
    constraint tariff_lot_version_key unique (lot_id, version),
    constraint tariff_version_positive check (version >= 1),
    constraint tariff_document_is_json check (document::jsonb is not null),
    constraint tariff_currency_form check (currency ~ '^[A-Z]{3}$')
);

create index tariff_lot_effective_idx on tariff (lot_id, effective_from desc, version desc);

create function tariff_immutable() returns trigger language plpgsql as $$
begin
    raise exception 'tariff versions are immutable (lot %, version %)', old.lot_id, old.version;
end;
$$;

create trigger tariff_no_update before update or delete on tariff
    for each row execute function tariff_immutable();
