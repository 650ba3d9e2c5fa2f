//! What the public hot paths read, kept in each process: spaces and lots (by id), the tariff
//! version in force per lot, and parsed tariffs (by version). A scan, a quote or the phone
//! page then costs no query on a warm cache, and a start none for its space and lot.
//!
//! **Tariffs** are immutable per version (`tariff` refuses updates), so a parsed and
//! validated [`Tariff`] is kept under its `tariff_id` for good: only the capacity evicts.
//!
//! **Spaces, lots and which tariff version is in force** change through rare operator
//! writes: a rotated code, a space taken out of service, a lot edited, a tariff published.
//! Every such write moves the one-row table `cache_epoch` in its own transaction
//! ([`note_change`]): `epoch + 1`, and the lot it touched. A
//! process reads that row at most every [`POLL_EVERY`] while requests come (the request
//! that finds the reading old reads it; the others go on) and drops the changed lot with
//! its spaces, or everything when it missed more than one change. An entry is served only
//! while the latest successful reading *started* less than [`SERVE_WITHIN`] ago: a change
//! committed before that reading started is in it, so whatever was committed is seen by
//! every process within `SERVE_WITHIN` (750 ms) plus one read of the row, under the 1 s
//! bound. Nothing depends on a notification arriving: a reading that fails or takes too
//! long makes requests read the database instead, never serve older entries.
//!
//! A write through this process calls [`PublicCache::changed`]: the next request reads the
//! row before it serves anything, so this process sees its own change at once.
//!
//! A fill that read the database before a drop is not kept after it: each drop moves a
//! generation, and a fill keeps its row only if the generation it began under is current.
//! Rows that are not there are never cached, so creating a lot or a space needs no signal.
//!
//! Never cached: anything about sessions, settlements or drivers, and everything the
//! enforcement path reads (wardens' checks read the database, `qr::resolve::Lookup::Fresh`).

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lru::LruCache;
use sqlx::{Database, Encode, Executor, IntoArguments, Transaction, Type};
use uuid::Uuid;

use super::lots::{self, Lot};
use super::spaces::{self, Space};
use super::tariffs::{self, TariffVersion, VersionRef};
use super::{Db, StoreError, StoreResult, on_db};
use crate::domain::tariff::Tariff;

/// How old the reading of `cache_epoch` may grow before a request reads it again.
pub const POLL_EVERY: Duration = Duration::from_millis(250);
/// Entries are served only while the latest successful reading started less than this ago.
pub const SERVE_WITHIN: Duration = Duration::from_millis(750);
/// Most spaces kept; when full, the least recently used goes.
pub const SPACE_CAPACITY: usize = 50_000;
/// Most lots kept (each with which tariff version is in force).
pub const LOT_CAPACITY: usize = 5_000;
/// Most parsed tariff versions kept.
pub const TARIFF_CAPACITY: usize = 512;

/// What an operator's write changed, for [`note_change`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Changed {
    /// The lot, or its tariff.
    Lot(Uuid),
    /// A space (its status or its code), whose lot is looked up.
    Space(Uuid),
}

/// Moves `cache_epoch` for a change, inside the transaction of the change. Call it last,
/// after the audit event: the row is locked until the commit.
pub(crate) async fn note_change<DB>(
    tx: &mut Transaction<'_, DB>,
    changed: Changed,
) -> Result<(), sqlx::Error>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
{
    let (sql, id) = match changed {
        Changed::Lot(lot_id) => (
            "update cache_epoch set epoch = epoch + 1, lot_id = $1 where id = 1",
            lot_id,
        ),
        Changed::Space(space_id) => (
            "update cache_epoch set epoch = epoch + 1, \
             lot_id = (select lot_id from space where space_id = $1) where id = 1",
            space_id,
        ),
    };
    sqlx::query(sql).bind(id).execute(&mut **tx).await?;
    Ok(())
}

/// The row as read: how many changes there have been, and the lot of the latest.
async fn read_epoch(db: &Db) -> StoreResult<(i64, Option<Uuid>)> {
    on_db!(db, pool => Ok(sqlx::query_as::<_, (i64, Option<Uuid>)>(
        "select epoch, lot_id from cache_epoch where id = 1",
    )
    .fetch_one(pool)
    .await?))
}

/// A tariff version, parsed and validated once.
#[derive(Debug)]
pub struct CachedTariff {
    /// The stored version, with its document as published.
    pub stored: TariffVersion,
    /// The document, validated: what prices.
    pub tariff: Tariff,
    /// The document as JSON, for answers that show it.
    pub document: serde_json::Value,
}

/// Parsed tariff versions by `tariff_id`. Versions never change, so nothing is dropped but
/// the least recently used.
pub struct TariffCache {
    entries: Mutex<LruCache<Uuid, Arc<CachedTariff>>>,
}

fn bound(capacity: usize) -> NonZeroUsize {
    NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl TariffCache {
    /// An empty cache of at most `capacity` versions.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(LruCache::new(bound(capacity))),
        }
    }

    /// The version `tariff_id`, parsed; read and parsed on the first ask only.
    pub async fn get(&self, db: &Db, tariff_id: Uuid) -> StoreResult<Option<Arc<CachedTariff>>> {
        if let Some(hit) = lock(&self.entries).get(&tariff_id) {
            return Ok(Some(hit.clone()));
        }
        let Some(stored) = tariffs::get(db, tariff_id).await? else {
            return Ok(None);
        };
        let parsed = Arc::new(parse(stored)?);
        lock(&self.entries).put(tariff_id, parsed.clone());
        Ok(Some(parsed))
    }
}

/// Parses a stored version. A document that does not validate any more (the rules changed
/// since it was published) cannot be decoded: a failure on our side, never cached.
fn parse(stored: TariffVersion) -> StoreResult<CachedTariff> {
    let tariff_id = stored.tariff_id;
    let invalid = |reason: String| {
        let message = format!("stored tariff {tariff_id} is invalid: {reason}");
        StoreError::Database(sqlx::Error::Decode(message.into()))
    };
    let tariff = Tariff::from_json_str(&stored.document).map_err(|e| invalid(e.to_string()))?;
    let document = serde_json::from_str(&stored.document).map_err(|e| invalid(e.to_string()))?;
    Ok(CachedTariff {
        stored,
        tariff,
        document,
    })
}

/// A lot and which of its tariff versions is the latest (`None`: none published yet).
#[derive(Debug)]
struct LotEntry {
    lot: Arc<Lot>,
    latest_tariff: Option<VersionRef>,
}

/// The entries that `cache_epoch` invalidates, and the reading they are served under.
struct Entries {
    spaces: LruCache<Uuid, Arc<Space>>,
    lots: LruCache<Uuid, Arc<LotEntry>>,
    /// Moved by every drop: a fill begun under an older generation is not kept.
    generation: u64,
    /// The epoch as last read.
    epoch: Option<i64>,
    /// When the latest successful reading started.
    read_started: Option<Instant>,
    /// A write through this process committed at this instant: only a reading started
    /// later may serve entries again.
    written_at: Option<Instant>,
}

impl Entries {
    /// How old the reading is, if entries may be served on it at all.
    fn reading_age(&self) -> Option<Duration> {
        let started = self.read_started?;
        if self.written_at.is_some_and(|written| started < written) {
            return None;
        }
        Some(started.elapsed())
    }

    fn drop_all(&mut self) {
        self.spaces.clear();
        self.lots.clear();
        self.generation += 1;
    }

    fn drop_lot(&mut self, lot_id: Uuid) {
        self.lots.pop(&lot_id);
        let gone: Vec<Uuid> = self
            .spaces
            .iter()
            .filter(|(_, space)| space.lot_id == lot_id)
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.spaces.pop(&id);
        }
        self.generation += 1;
    }

    /// Takes in a reading of `cache_epoch` that started at `started`.
    fn apply(&mut self, epoch: i64, lot_id: Option<Uuid>, started: Instant) {
        match (self.epoch, lot_id) {
            (Some(known), _) if known == epoch => {}
            (Some(known), Some(lot_id)) if known + 1 == epoch => self.drop_lot(lot_id),
            // Several changes, or the first reading: nothing kept can be trusted.
            _ => self.drop_all(),
        }
        // Readings are taken one at a time, so this is the latest (a restored database may
        // have gone back: that dropped everything above).
        self.epoch = Some(epoch);
        self.read_started = Some(self.read_started.map_or(started, |s| s.max(started)));
    }
}

/// Spaces, lots and the tariffs in force, kept per process with the bound above; see the
/// module's documentation. One per process (in `AppState`), shared by every request.
pub struct PublicCache {
    db: Db,
    entries: Mutex<Entries>,
    /// Held by the request that reads `cache_epoch`, so that only one does at a time.
    reading: tokio::sync::Mutex<()>,
    tariffs: TariffCache,
}

impl PublicCache {
    /// An empty cache over `db` with the default capacities.
    pub fn new(db: Db) -> Self {
        Self::with_capacity(db, SPACE_CAPACITY, LOT_CAPACITY, TARIFF_CAPACITY)
    }

    /// An empty cache over `db` keeping at most so many spaces, lots and tariff versions.
    pub fn with_capacity(db: Db, spaces: usize, lots: usize, tariffs: usize) -> Self {
        Self {
            db,
            entries: Mutex::new(Entries {
                spaces: LruCache::new(bound(spaces)),
                lots: LruCache::new(bound(lots)),
                generation: 0,
                epoch: None,
                read_started: None,
                written_at: None,
            }),
            reading: tokio::sync::Mutex::new(()),
            tariffs: TariffCache::new(tariffs),
        }
    }

    /// The database the cache reads (the primary).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// This process changed a lot, a space, a code or a tariff (committed): nothing is served
    /// again before `cache_epoch` is read anew.
    pub fn changed(&self) {
        lock(&self.entries).written_at = Some(Instant::now());
    }

    /// Whether entries may be served now, reading `cache_epoch` first when the last reading
    /// is old; `None` when they may not (the reading failed): read the database.
    async fn generation(&self) -> Option<u64> {
        let young = |entries: &Entries, within: Duration| {
            entries
                .reading_age()
                .is_some_and(|age| age < within)
                .then_some(entries.generation)
        };
        if let Some(generation) = young(&lock(&self.entries), POLL_EVERY) {
            return Some(generation);
        }
        let _reading = match self.reading.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                // Another request is reading it: serve meanwhile if the last reading is
                // young enough, else wait for the new one.
                if let Some(generation) = young(&lock(&self.entries), SERVE_WITHIN) {
                    return Some(generation);
                }
                self.reading.lock().await
            }
        };
        if let Some(generation) = young(&lock(&self.entries), POLL_EVERY) {
            return Some(generation);
        }
        let started = Instant::now();
        match read_epoch(&self.db).await {
            Ok((epoch, lot_id)) => {
                let mut entries = lock(&self.entries);
                entries.apply(epoch, lot_id, started);
                // A slow reading is no use for long: judged like any other.
                young(&entries, SERVE_WITHIN)
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot read cache_epoch: reading the database");
                None
            }
        }
    }

    /// The space `space_id`, whichever lot it is in.
    pub async fn space(&self, space_id: Uuid) -> StoreResult<Option<Arc<Space>>> {
        let Some(generation) = self.generation().await else {
            return Ok(spaces::get_public(&self.db, space_id).await?.map(Arc::new));
        };
        if let Some(hit) = lock(&self.entries).spaces.get(&space_id) {
            return Ok(Some(hit.clone()));
        }
        let Some(space) = spaces::get_public(&self.db, space_id).await? else {
            return Ok(None);
        };
        let space = Arc::new(space);
        let mut entries = lock(&self.entries);
        if entries.generation == generation {
            entries.spaces.put(space_id, space.clone());
        }
        Ok(Some(space))
    }

    async fn lot_entry(&self, lot_id: Uuid) -> StoreResult<Option<Arc<LotEntry>>> {
        let read = || async {
            let Some(lot) = lots::get_public(&self.db, lot_id).await? else {
                return Ok(None);
            };
            let latest_tariff = tariffs::in_force_ref(&self.db, lot_id, None).await?;
            Ok::<_, StoreError>(Some(Arc::new(LotEntry {
                lot: Arc::new(lot),
                latest_tariff,
            })))
        };
        let Some(generation) = self.generation().await else {
            return read().await;
        };
        if let Some(hit) = lock(&self.entries).lots.get(&lot_id) {
            return Ok(Some(hit.clone()));
        }
        let Some(entry) = read().await? else {
            return Ok(None);
        };
        let mut entries = lock(&self.entries);
        if entries.generation == generation {
            entries.lots.put(lot_id, entry.clone());
        }
        Ok(Some(entry))
    }

    /// The lot `lot_id`, whoever owns it.
    pub async fn lot(&self, lot_id: Uuid) -> StoreResult<Option<Arc<Lot>>> {
        Ok(self.lot_entry(lot_id).await?.map(|entry| entry.lot.clone()))
    }

    /// The tariff version in force at `now` in the lot, parsed (`None`: no such lot, or no
    /// version in force).
    pub async fn tariff_in_force(
        &self,
        lot_id: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Arc<CachedTariff>>> {
        let latest = match self.lot_entry(lot_id).await? {
            None => return Ok(None),
            Some(entry) => entry.latest_tariff,
        };
        let in_force = match latest {
            None => None,
            Some(latest) if latest.effective_from <= now => Some(latest),
            // Published for later than `now` (another process's clock ahead of ours): the
            // database says which one is in force now.
            Some(_) => tariffs::in_force_ref(&self.db, lot_id, Some(now)).await?,
        };
        match in_force {
            Some(version) => self.tariff(version.tariff_id).await,
            None => Ok(None),
        }
    }

    /// The tariff version `tariff_id`, parsed.
    pub async fn tariff(&self, tariff_id: Uuid) -> StoreResult<Option<Arc<CachedTariff>>> {
        self.tariffs.get(&self.db, tariff_id).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::{Entries, LruCache, bound};
    use crate::domain::space::SpaceStatus;
    use crate::store::spaces::Space;
    use std::sync::Arc;
    use uuid::Uuid;

    fn entries() -> Entries {
        Entries {
            spaces: LruCache::new(bound(8)),
            lots: LruCache::new(bound(8)),
            generation: 0,
            epoch: None,
            read_started: None,
            written_at: None,
        }
    }

    fn space(lot_id: Uuid) -> Arc<Space> {
        let now = chrono::Utc::now();
        Arc::new(Space {
            space_id: Uuid::now_v7(),
            lot_id,
            code: "A-1".into(),
            status: SpaceStatus::Active,
            qr_version: 1,
            qr_token: None,
            created_at: now,
            updated_at: now,
        })
    }

    #[test]
    fn one_change_drops_its_lot_and_more_drop_everything() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut e = entries();
        e.apply(7, Some(a), Instant::now());
        let (in_a, in_b) = (space(a), space(b));
        e.spaces.put(in_a.space_id, in_a.clone());
        e.spaces.put(in_b.space_id, in_b.clone());
        let generation = e.generation;

        e.apply(7, Some(a), Instant::now());
        assert_eq!(e.spaces.len(), 2, "an unchanged epoch drops nothing");
        assert_eq!(e.generation, generation);

        e.apply(8, Some(a), Instant::now());
        assert!(!e.spaces.contains(&in_a.space_id), "lot a changed");
        assert!(e.spaces.contains(&in_b.space_id), "lot b did not");
        assert!(
            e.generation > generation,
            "fills begun before the drop are not kept"
        );

        e.apply(10, Some(b), Instant::now());
        assert_eq!(
            e.spaces.len(),
            0,
            "two changes seen as one: which lots is unknown"
        );
    }

    #[test]
    fn a_write_here_makes_older_readings_unusable() {
        let mut e = entries();
        assert!(
            e.reading_age().is_none(),
            "nothing is served before a reading"
        );
        let before = Instant::now();
        e.apply(1, None, before);
        assert!(e.reading_age().is_some());
        e.written_at = Some(Instant::now());
        assert!(
            e.reading_age().is_none(),
            "the reading may predate the write"
        );
        e.apply(1, None, Instant::now());
        assert!(e.reading_age().is_some());
    }
}
