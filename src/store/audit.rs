//! Appending to the audit chain, inside the transaction of the change it records.

/// Appends an event to the audit chain within transaction `$tx` (an `&mut` transaction of
/// either backend): locks the head row, takes the next number and hash, writes the event
/// and moves the head. Runs as part of the caller's transaction, so the change and its
/// event commit together or not at all.
macro_rules! audit {
    ($tx:expr, $now:expr, $kind:expr, $entity:expr, $payload:expr) => {{
        let (seq, prev, head_at): (i64, Vec<u8>, Option<chrono::DateTime<chrono::Utc>>) =
            sqlx::query_as(
                "update audit_head set seq = seq + 1 where id = 1 returning seq, hash, at",
            )
            .fetch_one(&mut *$tx)
            .await?;
        // The chain's clock never runs backwards, whatever the processes' clocks say.
        let at = match head_at {
            Some(head) if head > $now => head,
            _ => $now,
        };
        let prev: [u8; 32] = prev
            .as_slice()
            .try_into()
            .unwrap_or($crate::domain::audit::GENESIS);
        let event = $crate::domain::audit::Event {
            seq,
            at,
            kind: String::from($kind),
            entity_id: $entity.to_string(),
            payload: $payload,
        };
        let hash = event.hash(&prev);
        sqlx::query(
            "insert into audit_event (seq, at, kind, entity_id, payload, prev_hash, hash) \
             values ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(seq)
        .bind(at)
        .bind(&event.kind)
        .bind(&event.entity_id)
        .bind($crate::domain::audit::canonical_json(&event.payload))
        .bind(&prev[..])
        .bind(&hash[..])
        .execute(&mut *$tx)
        .await?;
        sqlx::query("update audit_head set hash = $1, at = $2 where id = 1")
            .bind(&hash[..])
            .bind(at)
            .execute(&mut *$tx)
            .await?;
        (seq, hash)
    }};
}
pub(crate) use audit;
