//! Builder methods on [`Alert`] and [`Severity`], and [`host_part`] for naming devices.

use std::net::IpAddr;

pub use opsconductor_text::host_part;

use crate::{Alert, Severity};

impl Alert {
    /// Starts an alert of `alert_type` (a stable machine name such as `linkDown`) with a
    /// human-readable `title`. An empty title is fine: the host then shows the alert type.
    ///
    /// The alert still needs a device ([`Alert::device`], [`Alert::device_ip`] or
    /// [`Alert::device_name`]): the host refuses alerts with neither.
    pub fn new(alert_type: impl Into<String>, title: impl Into<String>) -> Alert {
        Alert {
            alert_type: alert_type.into(),
            device_ip: None,
            device_name: None,
            title: title.into(),
            message: String::new(),
            severity: None,
            clears: false,
            identity: Vec::new(),
            fields: Vec::new(),
            occurred_at: None,
        }
    }

    /// Sets the device's IP address. The host refuses an alert whose `device-ip` does not parse
    /// as an IP address; use [`Alert::device`] when the text may also be a name.
    pub fn device_ip(mut self, ip: impl Into<String>) -> Alert {
        self.device_ip = Some(ip.into());
        self
    }

    /// Sets the device's name (host name, sysName, ...). Names are compared case-insensitively.
    pub fn device_name(mut self, name: impl Into<String>) -> Alert {
        self.device_name = Some(name.into());
        self
    }

    /// Sets the device from a host string as vendors send it: an IP address becomes
    /// `device-ip`, anything else `device-name`. Ports, URL schemes, paths and IPv6 brackets are
    /// stripped first (see [`host_part`]); a blank string leaves the alert unchanged.
    pub fn device(self, host: &str) -> Alert {
        match host_part(host) {
            Some(h) => match h.parse::<IpAddr>() {
                Ok(ip) => self.device_ip(ip.to_string()),
                Err(_) => self.device_name(h),
            },
            None => self,
        }
    }

    /// Sets the longer description shown with the alert.
    pub fn message(mut self, message: impl Into<String>) -> Alert {
        self.message = message.into();
        self
    }

    /// Sets the addon's view of severity. Accepts `Severity` or `Option<Severity>` so that a
    /// [`crate::Mapping`] lookup can be passed straight in; `None` leaves the choice to the
    /// manifest's `default_severity`. A manifest `severity_map` entry for the alert type wins
    /// over both.
    pub fn severity(mut self, severity: impl Into<Option<Severity>>) -> Alert {
        self.severity = severity.into();
        self
    }

    /// Marks the event as ending the problem: the host resolves the open alert with the same
    /// alert type, device and identity, and never opens a new one for this event.
    pub fn clears(mut self, clears: bool) -> Alert {
        self.clears = clears;
        self
    }

    /// Adds a name/value pair that identifies the problem (with alert type and device): events
    /// with equal identity are the same alert while it is open. Identity is also shown as a field.
    pub fn identity(mut self, name: impl Into<String>, value: impl Into<String>) -> Alert {
        self.identity.push((name.into(), value.into()));
        self
    }

    /// Adds several identity pairs, e.g. from [`crate::ptr_pairs`].
    pub fn identities<K, V>(mut self, pairs: impl IntoIterator<Item = (K, V)>) -> Alert
    where
        K: Into<String>,
        V: Into<String>,
    {
        self.identity
            .extend(pairs.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Adds a detail shown to operators, which does not take part in identity.
    pub fn field(mut self, name: impl Into<String>, value: impl Into<String>) -> Alert {
        self.fields.push((name.into(), value.into()));
        self
    }

    /// Adds a detail only when there is a value, so optional vendor fields need no `if let`.
    pub fn field_opt<V: Into<String>>(self, name: impl Into<String>, value: Option<V>) -> Alert {
        match value {
            Some(v) => self.field(name, v),
            None => self,
        }
    }

    /// Adds several details, e.g. from [`crate::ptr_pairs`].
    pub fn fields<K, V>(mut self, pairs: impl IntoIterator<Item = (K, V)>) -> Alert
    where
        K: Into<String>,
        V: Into<String>,
    {
        self.fields
            .extend(pairs.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Sets when the problem happened, in milliseconds since the Unix epoch. Without it the
    /// host uses the time it received the event.
    pub fn occurred_at_millis(mut self, millis: impl Into<Option<i64>>) -> Alert {
        self.occurred_at = millis.into();
        self
    }
}

impl Severity {
    /// The lowercase name used in manifests and by the host: `critical` ... `info`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Major => "major",
            Severity::Minor => "minor",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_sets_ip_or_name() {
        let a = Alert::new("t", "").device("192.0.2.7:161");
        assert_eq!(a.device_ip.as_deref(), Some("192.0.2.7"));
        assert_eq!(a.device_name, None);

        let a = Alert::new("t", "").device("core-sw-01.example.net");
        assert_eq!(a.device_ip, None);
        assert_eq!(a.device_name.as_deref(), Some("core-sw-01.example.net"));

        // IPv6 comes out in canonical form, the same form the host stores.
        let a = Alert::new("t", "").device("[2001:0db8::0001]:80");
        assert_eq!(a.device_ip.as_deref(), Some("2001:db8::1"));

        assert_eq!(Alert::new("t", "").device("  "), Alert::new("t", ""));
    }

    #[test]
    fn builder_fills_every_field() {
        let a = Alert::new("linkDown", "Link down")
            .device_ip("192.0.2.1")
            .device_name("sw1")
            .message("ifIndex 3 went down")
            .severity(Severity::Major)
            .clears(false)
            .identity("ifIndex", "3")
            .field("ifDescr", "ge-0/0/3")
            .field_opt("ifAlias", None::<String>)
            .field_opt("speed", Some("1G"))
            .occurred_at_millis(1_700_000_000_000);
        assert_eq!(
            a,
            Alert {
                alert_type: "linkDown".into(),
                device_ip: Some("192.0.2.1".into()),
                device_name: Some("sw1".into()),
                title: "Link down".into(),
                message: "ifIndex 3 went down".into(),
                severity: Some(Severity::Major),
                clears: false,
                identity: vec![("ifIndex".into(), "3".into())],
                fields: vec![
                    ("ifDescr".into(), "ge-0/0/3".into()),
                    ("speed".into(), "1G".into())
                ],
                occurred_at: Some(1_700_000_000_000),
            }
        );
        assert_eq!(Alert::new("t", "").severity(None).severity, None);
    }
}
