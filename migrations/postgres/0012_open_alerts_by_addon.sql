-- Open alerts by addon and last occurrence, for the minute's expiry job
-- (store/schedule.rs `expire_alerts`: `WHERE addon_id = $1 AND status <> 'resolved' AND
-- last_seen_at < $2`). Without it the job read every alert the addon ever raised through
-- alerts_addon_id_id, resolved ones included, on the writer's connection: a 30-minute soak
-- showed the writer and trap queues stalling once a minute, longer as the history grew. Partial,
-- so it holds the open alerts only and costs nothing for the history.
--
-- Kept equivalent to migrations/sqlite/0012_open_alerts_by_addon.sql.
CREATE INDEX alerts_open_addon_last_seen ON alerts (addon_id, last_seen_at) WHERE status <> 'resolved';
