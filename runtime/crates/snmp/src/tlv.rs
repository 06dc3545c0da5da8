//! Raw BER framing: a structural check of a datagram before `rasn` decodes it, and the byte
//! offsets USM needs (where `msgAuthenticationParameters` sits in the wire encoding).
//!
//! `rasn` decodes values but neither reports where a field was in the input nor promises a
//! bounded recursion depth on hostile input, so this module walks the tag-length-value headers
//! itself. It only reads headers; every value is still decoded by `rasn`.

use std::ops::Range;

/// SNMP messages nest at most five constructed levels (message → scopedPDU → PDU → varbind
/// list → varbind); allowing a few more costs nothing and refuses pathological nesting before
/// any recursive decoder sees it.
const MAX_DEPTH: usize = 8;

/// Long-form lengths longer than four octets cannot describe anything that fits in a UDP
/// datagram (RFC 3417 § 8 allows more length octets than needed, but not absurd ones).
const MAX_LENGTH_OCTETS: usize = 4;

pub const TAG_INTEGER: u8 = 0x02;
pub const TAG_OCTET_STRING: u8 = 0x04;
pub const TAG_SEQUENCE: u8 = 0x30;

/// One tag-length-value header: the tag octet and where the value lies in the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlv {
    pub tag: u8,
    pub value: Range<usize>,
}

impl Tlv {
    fn end(&self) -> usize {
        self.value.end
    }

    fn is_constructed(&self) -> bool {
        self.tag & 0x20 != 0
    }
}

/// Reads the header of the element starting at `pos` in `buf`.
///
/// Refused here, with the reason: high tag numbers (SNMP uses none), the indefinite length form
/// (prohibited by RFC 3417 § 8) and values that run past the end of `buf`.
pub fn header(buf: &[u8], pos: usize) -> Result<Tlv, String> {
    let tag = *buf.get(pos).ok_or("truncated: missing tag")?;
    if tag & 0x1f == 0x1f {
        return Err(format!("unsupported high tag number form at offset {pos}"));
    }
    let first = *buf
        .get(pos + 1)
        .ok_or_else(|| format!("truncated: missing length at offset {}", pos + 1))?;
    let (length, header_len) = if first & 0x80 == 0 {
        (usize::from(first), 2)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 {
            return Err(format!("indefinite length at offset {}", pos + 1));
        }
        if count > MAX_LENGTH_OCTETS {
            return Err(format!("length of {count} octets at offset {}", pos + 1));
        }
        let octets = buf
            .get(pos + 2..pos + 2 + count)
            .ok_or_else(|| format!("truncated: length at offset {}", pos + 1))?;
        let length = octets
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (length, 2 + count)
    };
    let start = pos + header_len;
    let end = start
        .checked_add(length)
        .filter(|&end| end <= buf.len())
        .ok_or_else(|| {
            format!(
                "truncated: element at offset {pos} claims {length} bytes, {} remain",
                buf.len().saturating_sub(start)
            )
        })?;
    Ok(Tlv {
        tag,
        value: start..end,
    })
}

/// Checks that `buf` holds exactly one well-formed element (no trailing bytes).
pub fn validate_exact(buf: &[u8]) -> Result<(), String> {
    let end = validate_first(buf)?;
    if end != buf.len() {
        return Err(format!(
            "{} trailing bytes after the message",
            buf.len() - end
        ));
    }
    Ok(())
}

/// Checks the first element of `buf` and returns where it ends; bytes after it are allowed
/// (a decrypted DES scopedPDU carries up to seven bytes of padding).
pub fn validate_first(buf: &[u8]) -> Result<usize, String> {
    let tlv = header(buf, 0)?;
    check(buf, &tlv, 1)?;
    Ok(tlv.end())
}

/// Walks the children of a constructed element: they must tile its value exactly, SNMP's
/// simple types must use the primitive form (RFC 3417 § 8), and nesting is bounded.
fn check(buf: &[u8], tlv: &Tlv, depth: usize) -> Result<(), String> {
    if !tlv.is_constructed() {
        return Ok(());
    }
    // Universal class: only SEQUENCE may be constructed (a constructed OCTET STRING is legal
    // BER but forbidden in SNMP). Application class: every SMI application type is primitive.
    let class = tlv.tag & 0xc0;
    if (class == 0x00 && tlv.tag != TAG_SEQUENCE) || class == 0x40 {
        return Err(format!(
            "constructed encoding of tag {:#04x} at offset {}",
            tlv.tag, tlv.value.start
        ));
    }
    if depth > MAX_DEPTH {
        return Err(format!("nesting deeper than {MAX_DEPTH} levels"));
    }
    let mut pos = tlv.value.start;
    while pos < tlv.value.end {
        let child = header(buf, pos)?;
        if child.end() > tlv.value.end {
            return Err(format!(
                "element at offset {pos} runs past its enclosing element"
            ));
        }
        check(buf, &child, depth + 1)?;
        pos = child.end();
    }
    Ok(())
}

/// Returns the children of the constructed element `tlv`, each with its header.
fn children(buf: &[u8], tlv: &Tlv) -> Result<Vec<Tlv>, String> {
    let mut out = Vec::new();
    let mut pos = tlv.value.start;
    while pos < tlv.value.end {
        let child = header(buf, pos)?;
        pos = child.end();
        out.push(child);
    }
    Ok(out)
}

/// Reads the `version` INTEGER of an SNMP message (the first field of the outer SEQUENCE of
/// every version), without decoding the rest.
pub fn message_version(buf: &[u8]) -> Result<i64, String> {
    let outer = header(buf, 0)?;
    if outer.tag != TAG_SEQUENCE {
        return Err(format!(
            "message is not a SEQUENCE (tag {:#04x})",
            outer.tag
        ));
    }
    let version = header(buf, outer.value.start)?;
    if version.tag != TAG_INTEGER {
        return Err("message version is not an INTEGER".to_owned());
    }
    let bytes = &buf[version.value.clone()];
    if bytes.is_empty() || bytes.len() > 8 {
        return Err(format!("message version of {} octets", bytes.len()));
    }
    // Two's complement, sign-extended from the first octet.
    let init: i64 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
    Ok(bytes.iter().fold(init, |acc, &b| (acc << 8) | i64::from(b)))
}

/// Locates `msgAuthenticationParameters` in a (structurally valid) SNMPv3 message: the value
/// bytes of the fifth field of the UsmSecurityParameters SEQUENCE, which is itself the content
/// of the third field (msgSecurityParameters OCTET STRING) of the message.
///
/// Walking the headers finds exactly the field the HMAC covers; searching the datagram for the
/// received digest bytes could match a varbind or the engine id instead.
pub fn auth_params_range(buf: &[u8]) -> Result<Range<usize>, String> {
    let outer = header(buf, 0)?;
    let fields = children(buf, &outer)?;
    let security = fields
        .get(2)
        .filter(|t| t.tag == TAG_OCTET_STRING)
        .ok_or("msgSecurityParameters is not the third field")?;
    let usm = header(buf, security.value.start)?;
    if usm.tag != TAG_SEQUENCE || usm.end() != security.value.end {
        return Err("msgSecurityParameters does not hold exactly one SEQUENCE".to_owned());
    }
    let usm_fields = children(buf, &usm)?;
    let auth = usm_fields
        .get(4)
        .filter(|t| t.tag == TAG_OCTET_STRING)
        .ok_or("msgAuthenticationParameters is not the fifth USM field")?;
    Ok(auth.value.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_reads_short_and_long_lengths() {
        assert_eq!(
            header(&[0x04, 0x02, 0xaa, 0xbb], 0).unwrap(),
            Tlv {
                tag: 0x04,
                value: 2..4
            }
        );
        // Non-minimal long form is legal BER (RFC 3417 § 8 allows extra length octets).
        assert_eq!(
            header(&[0x04, 0x82, 0x00, 0x01, 0xaa], 0).unwrap(),
            Tlv {
                tag: 0x04,
                value: 4..5
            }
        );
    }

    #[test]
    fn header_refuses_bad_lengths() {
        for (bytes, why) in [
            (&[0x30, 0x80, 0x00, 0x00][..], "indefinite"),
            (&[0x04, 0x05, 0x01][..], "truncated"),
            (&[0x04, 0x85, 1, 0, 0, 0, 0][..], "octets"),
            (&[0x04, 0x84, 0xff, 0xff, 0xff, 0xff][..], "truncated"),
            (&[0x1f, 0x01, 0x00][..], "high tag"),
            (&[0x04][..], "truncated"),
            (&[][..], "truncated"),
        ] {
            let err = header(bytes, 0).unwrap_err();
            assert!(err.contains(why), "{bytes:?}: {err}");
        }
    }

    #[test]
    fn validate_checks_nesting_and_tiling() {
        validate_exact(&[0x30, 0x03, 0x02, 0x01, 0x00]).unwrap();
        let trailing = validate_exact(&[0x30, 0x03, 0x02, 0x01, 0x00, 0x00]).unwrap_err();
        assert!(trailing.contains("trailing"));
        // A child claiming more than its parent holds.
        assert!(validate_exact(&[0x30, 0x03, 0x02, 0x02, 0x00, 0x00]).is_err());
        // Constructed OCTET STRING is forbidden in SNMP.
        assert!(validate_exact(&[0x24, 0x03, 0x04, 0x01, 0x00]).is_err());
        // Deep nesting is refused instead of recursing.
        let mut deep = Vec::new();
        for i in 0..20 {
            deep.extend_from_slice(&[0x30, (2 * (19 - i)) as u8]);
        }
        assert!(validate_exact(&deep).unwrap_err().contains("nesting"));
    }

    #[test]
    fn message_version_reads_the_first_integer() {
        assert_eq!(message_version(&[0x30, 0x03, 0x02, 0x01, 0x03]).unwrap(), 3);
        assert_eq!(
            message_version(&[0x30, 0x03, 0x02, 0x01, 0xff]).unwrap(),
            -1
        );
        assert!(message_version(&[0x30, 0x03, 0x04, 0x01, 0x03]).is_err());
        assert!(message_version(&[0x02, 0x01, 0x03]).is_err());
    }
}
