-- Synthetic legacy rows for tests/tests/legacy_import.rs: 3,000 alerts, 10 targets, 3 settings,
-- good ones and the bad ones a real database collects. Alert ids are made from a counter so that
-- their order (which the import reads them in) is known: 00000000-0000-0000-0000-000000000001 …

INSERT INTO addons (id, name, version, method, manifest) VALUES
    ('alertmanager', 'Alertmanager', '1.0', 'webhook', '{}'),
    ('if-mib', 'IF-MIB', '1.0', 'snmp_trap', '{}'),
    ('ghost', 'Removed long ago', '0.3', 'webhook', '{}');

CREATE FUNCTION legacy_id(n int) RETURNS uuid AS
    $$ SELECT ('00000000-0000-0000-0000-' || lpad(n::text, 12, '0'))::uuid $$ LANGUAGE sql;

-- 1..2000: history, resolved, with raw data.
INSERT INTO alerts (id, addon_id, fingerprint, device_ip, alert_type, severity, category, title,
                    message, status, occurred_at, received_at, resolved_at, occurrence_count, raw_data)
SELECT legacy_id(n), 'alertmanager', md5('h' || n), '10.0.' || (n / 250) || '.' || (n % 250),
       'HighLoad', 'major', 'Application', 'load high on ' || n, 'load 9', 'resolved',
       now() - interval '30 days' + n * interval '1 minute',
       now() - interval '30 days' + n * interval '1 minute',
       now() - interval '29 days' + n * interval '1 minute', 1 + n % 5, jsonb_build_object('n', n)
FROM generate_series(1, 2000) n;

-- 2001..2500: open, one device each.
INSERT INTO alerts (id, addon_id, fingerprint, device_ip, alert_type, severity, category, title,
                    message, status, occurred_at, received_at, occurrence_count)
SELECT legacy_id(n), 'alertmanager', md5('o' || n), '10.1.' || (n / 250) || '.' || (n % 250),
       'HighLoad', 'critical', 'Application', 'load high', 'load 12', 'active',
       now() - interval '1 day', now() - interval '1 hour' + n * interval '1 second', 3
FROM generate_series(2001, 2500) n;

-- 2501..2800: open link-downs on 150 devices, twice each (the legacy system's duplicates).
INSERT INTO alerts (id, addon_id, fingerprint, device_ip, alert_type, severity, category, title,
                    status, occurred_at, received_at)
SELECT legacy_id(n), 'if-mib', md5('d' || (n % 150)), '10.2.0.' || (n % 150), 'linkDown',
       'major', 'network', 'link down', 'active', now() - interval '2 hours',
       now() - interval '2 hours' + n * interval '1 second'
FROM generate_series(2501, 2800) n;

-- 2801..2900: an addon that is no more.
INSERT INTO alerts (id, addon_id, fingerprint, device_ip, alert_type, severity, category, title,
                    status, occurred_at)
SELECT legacy_id(n), 'ghost', md5('g' || n), '10.3.0.1', 'Gone', 'minor', 'unknown', 'gone',
       'active', now()
FROM generate_series(2801, 2900) n;

-- 2901..2950: not an IP address in device_ip.
INSERT INTO alerts (id, addon_id, fingerprint, device_ip, alert_type, severity, category, title,
                    status, occurred_at)
SELECT legacy_id(n), 'alertmanager', md5('b' || n), 'core-sw-' || n, 'BadIp', 'warning', 'network',
       'bad ip', 'active', now()
FROM generate_series(2901, 2950) n;

-- 2951..2970: NULL status and message.
INSERT INTO alerts (id, addon_id, fingerprint, device_ip, alert_type, severity, category, title,
                    message, status, occurred_at)
SELECT legacy_id(n), 'alertmanager', md5('s' || n), '10.4.0.' || (n - 2950), 'NoStatus', 'info',
       'application', 'no status', NULL, NULL, now()
FROM generate_series(2951, 2970) n;

-- 2971..2990: no addon at all.
INSERT INTO alerts (id, addon_id, fingerprint, device_ip, alert_type, severity, category, title,
                    status, occurred_at)
SELECT legacy_id(n), NULL, md5('n' || n), '10.5.0.1', 'Orphan', 'minor', 'unknown', 'orphan',
       'active', now()
FROM generate_series(2971, 2990) n;

-- 2991..3000: a severity word of the legacy system's own.
INSERT INTO alerts (id, addon_id, fingerprint, device_ip, alert_type, severity, category, title,
                    status, occurred_at)
SELECT legacy_id(n), 'alertmanager', md5('w' || n), '10.6.0.' || (n - 2990), 'Loud', 'high',
       'application', 'loud', 'active', now()
FROM generate_series(2991, 3000) n;

INSERT INTO targets (name, ip_address, addon_id, poll_interval, config)
SELECT 'target-' || n, '10.9.0.' || n, 'alertmanager', 60, jsonb_build_object('path', 'health')
FROM generate_series(1, 8) n;
INSERT INTO targets (name, ip_address, addon_id, poll_interval) VALUES
    ('ghost-target', '10.9.0.9', 'ghost', 60),
    ('zero-interval', '10.9.0.10', 'alertmanager', 0);

INSERT INTO system_settings (key, value) VALUES
    ('retention_days', '30'),
    ('smtp_host', 'mail.example.net'),
    ('addons.generation', '5');
