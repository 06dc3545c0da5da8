-- The legacy system's schema, as its design document gives it
-- (shared/seed/clean-core-architecture.md, "Database Schema (Minimal)"), for the import tests
-- (tests/tests/legacy_import.rs) and for anyone trying `opsconductor import legacy` by hand.

-- Addons registry
CREATE TABLE addons (
    id VARCHAR(64) PRIMARY KEY,
    name VARCHAR(128) NOT NULL,
    version VARCHAR(32),
    method VARCHAR(32) NOT NULL,
    manifest JSONB NOT NULL,
    enabled BOOLEAN DEFAULT true,
    installed_at TIMESTAMPTZ DEFAULT NOW()
);

-- Alerts (single table, not two!)
CREATE TABLE alerts (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    addon_id VARCHAR(64) REFERENCES addons(id),
    fingerprint VARCHAR(64) NOT NULL,
    device_ip VARCHAR(45) NOT NULL,
    device_name VARCHAR(128),
    alert_type VARCHAR(128) NOT NULL,
    severity VARCHAR(32) NOT NULL,
    category VARCHAR(64) NOT NULL,
    title VARCHAR(256) NOT NULL,
    message TEXT,
    status VARCHAR(32) DEFAULT 'active',
    is_clear BOOLEAN DEFAULT false,
    occurred_at TIMESTAMPTZ NOT NULL,
    received_at TIMESTAMPTZ DEFAULT NOW(),
    resolved_at TIMESTAMPTZ,
    occurrence_count INTEGER DEFAULT 1,
    raw_data JSONB,
    created_at TIMESTAMPTZ DEFAULT NOW()
);

CREATE INDEX idx_alerts_fingerprint ON alerts(fingerprint);
CREATE INDEX idx_alerts_status ON alerts(status);
CREATE INDEX idx_alerts_device_ip ON alerts(device_ip);
CREATE INDEX idx_alerts_occurred_at ON alerts(occurred_at);

-- System settings
CREATE TABLE system_settings (
    key VARCHAR(128) PRIMARY KEY,
    value TEXT,
    updated_at TIMESTAMPTZ DEFAULT NOW()
);

-- Targets (devices to poll)
CREATE TABLE targets (
    id SERIAL PRIMARY KEY,
    name VARCHAR(128) NOT NULL,
    ip_address VARCHAR(45) NOT NULL,
    addon_id VARCHAR(64) REFERENCES addons(id),
    poll_interval INTEGER DEFAULT 300,
    enabled BOOLEAN DEFAULT true,
    config JSONB DEFAULT '{}',
    last_poll_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ DEFAULT NOW()
);
