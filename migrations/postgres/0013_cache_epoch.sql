-- What lets every process cache lots, spaces, their codes and tariffs (src/store/cache.rs,
-- docs/operations.md "Caches"): one row, moved in the same transaction as every change of
-- them. Each process reads it every 250 ms and drops what changed, so a rotated code, a
-- space taken out of service or a changed lot is seen by every process within a second.
--
-- `epoch` counts the changes; `lot_id` names the lot of the latest one (null: any lot).
-- A reader that saw `epoch - 1` before therefore knows exactly which lot changed; one that
-- missed more than one change drops everything. The row's lock orders the changes: they
-- are rare operator writes, never a driver's.
create table cache_epoch (
    id integer primary key,
    epoch bigint not null,
    lot_id uuid,
    constraint cache_epoch_one_row check (id = 1),
    constraint cache_epoch_not_negative check (epoch >= 0)
);

insert into cache_epoch (id, epoch, lot_id) values (1, 0, null);
